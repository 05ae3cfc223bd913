//! UTC dates on the command line (`--since 2026-11-01`, `--month 2026-11`)
//! to Unix milliseconds, without a calendar dependency.

use anyhow::{Context, bail};

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn number<T: std::str::FromStr>(s: &str, what: &str, text: &str) -> anyhow::Result<T> {
    s.parse()
        .ok()
        .with_context(|| format!("{text:?}: the {what} is not a number"))
}

fn date_ms(y: i64, m: u32, d: u32, text: &str) -> anyhow::Result<u64> {
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        bail!("{text:?} is not a date between 1970 and 9999");
    }
    Ok(days_from_civil(y, m, d) as u64 * 86_400_000)
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (UTC) or Unix milliseconds.
pub fn parse_time_ms(text: &str) -> anyhow::Result<u64> {
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return number(text, "millisecond count", text);
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        bail!("{text:?}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix milliseconds");
    };
    let mut ms = date_ms(
        number(y, "year", text)?,
        number(m, "month", text)?,
        number(d, "day", text)?,
        text,
    )?;
    if let Some(time) = time {
        let Some(time) = time.strip_suffix('Z') else {
            bail!("{text:?}: times are UTC and end in Z");
        };
        let parts: Vec<&str> = time.split(':').collect();
        let [h, mi, s] = parts.as_slice() else {
            bail!("{text:?}: the time is HH:MM:SS");
        };
        let (h, mi, s): (u64, u64, u64) = (
            number(h, "hour", text)?,
            number(mi, "minute", text)?,
            number(s, "second", text)?,
        );
        if h > 23 || mi > 59 || s > 59 {
            bail!("{text:?}: not a time of day");
        }
        ms += ((h * 60 + mi) * 60 + s) * 1000;
    }
    Ok(ms)
}

/// `[first millisecond, first millisecond of the next month)` of `YYYY-MM`.
pub fn month_range_ms(month: &str) -> anyhow::Result<(u64, u64)> {
    let Some((y, m)) = month.split_once('-') else {
        bail!("--month is YYYY-MM, not {month:?}");
    };
    let (y, m): (i64, u32) = (number(y, "year", month)?, number(m, "month", month)?);
    let start = date_ms(y, m, 1, month)?;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Ok((start, date_ms(ny, nm, 1, month)?))
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
