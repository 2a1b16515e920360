//! ISO 8601 durations as MGN reports `lagDuration` (`PT30S`, `PT1M30S`, `P1DT2H`, `PT0.5S`).

/// Seconds in an ISO 8601 duration; None for anything malformed (callers treat it as "no lag known").
pub fn iso8601_seconds(s: &str) -> Option<f64> {
    let rest = s.trim().strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    let mut total = 0.0;
    total += units(
        date,
        &[
            ('Y', 365.0 * 86400.0),
            ('M', 30.0 * 86400.0),
            ('W', 7.0 * 86400.0),
            ('D', 86400.0),
        ],
    )?;
    if let Some(t) = time {
        total += units(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    Some(total)
}

fn units(part: &str, table: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut next_unit = 0;
    for c in part.chars() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            num.push(if c == ',' { '.' } else { c });
            continue;
        }
        let idx = table.iter().position(|(u, _)| *u == c)?;
        if idx < next_unit || num.is_empty() {
            return None;
        }
        total += num.parse::<f64>().ok()? * table[idx].1;
        num.clear();
        next_unit = idx + 1;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::iso8601_seconds;

    #[test]
    fn parses_what_mgn_reports() {
        assert_eq!(iso8601_seconds("PT0S"), Some(0.0));
        assert_eq!(iso8601_seconds("PT30S"), Some(30.0));
        assert_eq!(iso8601_seconds("PT2M30S"), Some(150.0));
        assert_eq!(iso8601_seconds("PT1H"), Some(3600.0));
        assert_eq!(iso8601_seconds("P1DT2H"), Some(93600.0));
        assert_eq!(iso8601_seconds("PT0.5S"), Some(0.5));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "P", "PT", "30S", "PT30", "PTS", "PT1S2M", "garbage"] {
            assert_eq!(iso8601_seconds(bad), None, "{bad}");
        }
    }
}
