//! Time as the product reads and writes it: the one wall-clock reader (`now`,
//! `now_ms`), RFC 3339 for people (`format_ms`), and durations (`90s`, `15m`,
//! `1h`, `30d`) and times (RFC 3339, `-30d`, `now`) as the command line and the
//! config file write them. The parsers are pure: `now` is their argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock. Every reading of it goes through here (or `now_ms`), so a
/// test or a future injected clock has one place to look.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> i64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC, to the second (times before the epoch print as the epoch).
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses `90s`, `15m`, `1h`, `30d` (also `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write e.g. 90s, 15m, 1h or 30d)"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => {
            return Err(format!(
                "`{text}` is not a duration (write e.g. 90s, 15m, 1h or 30d)"
            ));
        }
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// `T` (§2): RFC 3339 (any offset, any year from 1 on), a duration before now
/// such as `-30d`, or `now`. Exact: no surrounding blanks.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = text
        .strip_prefix('-')
        .filter(|a| a.starts_with(|c: char| c.is_ascii_digit()))
    {
        let d = parse_duration(ago)?;
        return Ok(now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            format!(
                "`{text}` is not a time (write RFC 3339, e.g. 2024-05-09T12:00:00Z, a duration before now such as -30d, or now)"
            )
        })?;
    // Milliseconds since the epoch fit i64 for every year RFC 3339 can write.
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["", "s", "5", "5x", "-5s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_a_duration_ago_or_now() {
        let now = 1_715_260_900_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-30d", now), Ok(now - 30 * 86_400_000));
        assert_eq!(parse_time("-0s", now), Ok(now));
        assert_eq!(
            parse_time("2024-05-09T13:21:40Z", now),
            Ok(1_715_260_900_000)
        );
        assert_eq!(
            parse_time("2024-05-09T15:21:40+02:00", now),
            Ok(1_715_260_900_000)
        );
        assert_eq!(
            parse_time("2024-05-09T12:21:40.5-01:00", now),
            Ok(1_715_260_900_500)
        );
        assert_eq!(
            parse_time("2024-05-09t13:21:40z", now),
            Ok(now),
            "RFC 3339 §5.6"
        );
        assert_eq!(parse_time("1969-12-31T23:59:59Z", now), Ok(-1000));
        assert!(parse_time("0001-01-01T00:00:00Z", now).is_ok_and(|t| t < 0));
        for bad in [
            "yesterday",
            "-5",
            "-",
            "--5s",
            " now",
            "2024-13-01T00:00:00Z",
            "2024-05-09",
            "",
            "2024-05-09T15:21:40+0é:00",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
