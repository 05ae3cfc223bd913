//! Quantities as people type and read them: sizes (`512MiB`, `10GB`,
//! `4096`), durations (`30s`, `2m`, `1h 30m`, `500ms`, `7d`, or plain
//! seconds such as `2.5`) and times (dates in UTC, and "3 min ago").
//! What goes over the wire and into JSON stays integer bytes, nanoseconds
//! and Unix milliseconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Longest duration accepted anywhere (about 31.7 years): far past any
/// real limit, and small enough that its nanoseconds fit a `u64`.
const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// A byte count: an integer (bytes) or a number with a unit, binary
/// (`KiB`, `MiB`, `GiB`, `TiB`) or decimal (`kB`, `MB`, `GB`, `TB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl FromStr for Bytes {
    type Err = String;

    fn from_str(text: &str) -> Result<Bytes, String> {
        let trimmed = text.trim();
        if trimmed.starts_with(['-', '+']) {
            return Err(format!("{text:?} is not a size: sizes are not signed"));
        }
        if let Ok(n) = trimmed.parse::<u64>() {
            return Ok(Bytes(n));
        }
        trimmed
            .parse::<bytesize::ByteSize>()
            .map(|b| Bytes(b.as_u64()))
            .map_err(|_| {
                format!("{text:?} is not a size: use bytes (4096) or a unit (512MiB, 10GB)")
            })
    }
}

impl fmt::Display for Bytes {
    /// Binary units (`512.0 MiB`), exact bytes below 1 KiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec())
    }
}

/// A duration: plain seconds (`30`, `0.5`) or with units (`500ms`, `30s`,
/// `2m`, `1h 30m`, `7d`), at most [`MAX_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Secs {
    pub fn as_nanos(self) -> u64 {
        // MAX_DURATION keeps this in range.
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl FromStr for Secs {
    type Err = String;

    fn from_str(text: &str) -> Result<Secs, String> {
        let trimmed = text.trim();
        let duration = match trimmed.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 && s <= MAX_DURATION.as_secs_f64() => {
                Duration::from_secs_f64(s)
            }
            Ok(_) => return Err(out_of_range(text)),
            Err(_) => humantime::parse_duration(trimmed).map_err(|_| {
                format!("{text:?} is not a duration: use seconds (30, 0.5) or units (500ms, 30s, 2m, 1h 30m, 7d)")
            })?,
        };
        if duration > MAX_DURATION {
            return Err(out_of_range(text));
        }
        Ok(Secs(duration))
    }
}

fn out_of_range(text: &str) -> String {
    format!("{text:?} is not a duration between 0 and 1000000000 seconds")
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Nanoseconds for people: `1.5 s`, `250 ms`, `10 µs`.
pub fn ns(ns: u64) -> String {
    let d = Duration::from_nanos(ns);
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.3} s", d.as_secs_f64()),
    }
}

/// Unix milliseconds as a UTC date and time, `2026-11-28 02:00:09Z`.
pub fn utc(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// How long before `now_ms` a time was, roughly: `12 s ago`, `3 min ago`,
/// `5 h ago`, `2 d ago` (a time ahead of the clock is `just now`).
pub fn ago(ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0 => "just now".into(),
        1..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        let cases = [
            ("4096", 4096),
            ("0", 0),
            ("512MiB", 512 << 20),
            ("512 MiB", 512 << 20),
            ("1KiB", 1024),
            ("10GB", 10_000_000_000),
            ("1.5GiB", 3 << 29),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<Bytes>(), Ok(Bytes(bytes)), "{text}");
        }
        for bad in ["", "-1", "+5", "lots", "5 parsecs", "1e3"] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
        assert_eq!(Bytes(512 << 20).to_string(), "512.0 MiB");
    }

    #[test]
    fn durations_parse_as_seconds_or_with_units() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h 30m", Duration::from_secs(5400)),
            ("1h30m", Duration::from_secs(5400)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1000000000", MAX_DURATION),
        ];
        for (text, d) in cases {
            assert_eq!(text.parse::<Secs>(), Ok(Secs(d)), "{text}");
        }
        for bad in [
            "",
            "-1",
            "NaN",
            "inf",
            "1000000001",
            "40y",
            "soon",
            "5 fortnights",
        ] {
            assert!(bad.parse::<Secs>().is_err(), "{bad}");
        }
        assert_eq!(Secs(Duration::from_secs(5400)).to_string(), "1h 30m");
        assert_eq!(
            "1000000000".parse::<Secs>().unwrap().as_nanos(),
            1_000_000_000_000_000_000
        );
    }

    #[test]
    fn times_print_as_utc_dates_and_ages() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_798_761_599_000), "2026-12-31 23:59:59Z");
        let now = 1_800_000_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now + 5000, now), "just now");
        assert_eq!(ago(now - 12_000, now), "12 s ago");
        assert_eq!(ago(now - 180_000, now), "3 min ago");
        assert_eq!(ago(now - 5 * 3_600_000, now), "5 h ago");
        assert_eq!(ago(now - 2 * 86_400_000, now), "2 d ago");
        assert_eq!(ns(999), "999 ns");
        assert_eq!(ns(250_000_000), "250.0 ms");
        assert_eq!(ns(1_500_000_000), "1.500 s");
    }
}
