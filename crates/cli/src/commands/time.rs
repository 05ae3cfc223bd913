//! UTC dates on the command line (`--since 2026-11-01`, `--month 2026-11`)
//! to Unix milliseconds.

use anyhow::{Context, bail};
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Midnight UTC of `date`, in Unix milliseconds (dates from 1970 on).
fn date_ms(date: Date, text: &str) -> anyhow::Result<u64> {
    let ms = date
        .to_zoned_datetime(TimeZone::UTC)
        .with_context(|| format!("{text:?} is out of range"))?
        .timestamp()
        .as_millisecond();
    u64::try_from(ms).with_context(|| format!("{text:?} is before 1970"))
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (UTC) or Unix milliseconds.
pub fn parse_time_ms(text: &str) -> anyhow::Result<u64> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return text
            .parse()
            .with_context(|| format!("{text:?} is too large a millisecond count"));
    }
    if text.contains('T') {
        if !text.ends_with('Z') {
            bail!("{text:?}: times are UTC and end in Z");
        }
        let t: jiff::Timestamp = text
            .parse()
            .with_context(|| format!("{text:?} is not a time (YYYY-MM-DDTHH:MM:SSZ)"))?;
        return u64::try_from(t.as_millisecond())
            .with_context(|| format!("{text:?} is before 1970"));
    }
    let date: Date = text.parse().with_context(|| {
        format!("{text:?}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix milliseconds")
    })?;
    date_ms(date, text)
}

/// `[first millisecond, first millisecond of the next month)` of `YYYY-MM`.
pub fn month_range_ms(month: &str) -> anyhow::Result<(u64, u64)> {
    let first: Date = format!("{month}-01")
        .parse()
        .ok()
        .filter(|_| month.len() == 7)
        .with_context(|| format!("--month is YYYY-MM, not {month:?}"))?;
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .with_context(|| format!("{month:?} is out of range"))?;
    Ok((date_ms(first, month)?, date_ms(next, month)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_milliseconds() {
        assert_eq!(parse_time_ms("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time_ms("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(
            parse_time_ms("2026-11-27T02:24:04Z").unwrap(),
            1_795_746_244_000
        );
        assert_eq!(parse_time_ms("12345").unwrap(), 12_345);
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "yesterday",
            "2026-11-27T02:24:04",
            "",
        ] {
            assert!(parse_time_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_cover_their_days() {
        let (a, b) = month_range_ms("2024-02").unwrap();
        assert_eq!((b - a) / 86_400_000, 29);
        let (a, b) = month_range_ms("2026-12").unwrap();
        assert_eq!(a, parse_time_ms("2026-12-01").unwrap());
        assert_eq!(b, parse_time_ms("2027-01-01").unwrap());
        assert!(month_range_ms("2026-00").is_err());
        assert!(month_range_ms("November").is_err());
    }
}
