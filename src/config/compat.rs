//! Parsers for the settings that make this proxy a drop-in for Smokescreen
//! HEAD (issue 16): statsd, the stats socket, upstream proxies.

use super::values;

/// `--statsd-address` / `statsd_address`: `HOST:PORT` of a DogStatsD server
/// (UDP). Empty means unset.
pub fn parse_statsd_address(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    values::parse_resolver(s)
        .map(Some)
        .map_err(|_| "expected HOST:PORT such as 127.0.0.1:8200".to_string())
}

/// `--stats-socket-file-mode` / `stats_socket_file_mode`: octal permission
/// bits, as `chmod` takes them (`700`, `0660`).
pub fn parse_file_mode(s: &str) -> Result<u32, String> {
    const HINT: &str = "expected octal permission bits such as 700 or 660";
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(HINT.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_are_octal_permission_bits() {
        assert_eq!(parse_file_mode("700"), Ok(0o700));
        assert_eq!(parse_file_mode("0660"), Ok(0o660));
        for bad in ["", "800", "1777", "rwx", "-1"] {
            assert!(parse_file_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statsd_address_is_host_and_port() {
        assert_eq!(
            parse_statsd_address("127.0.0.1:8125"),
            Ok(Some("127.0.0.1:8125".into()))
        );
        assert_eq!(
            parse_statsd_address("statsd.local:8125"),
            Ok(Some("statsd.local:8125".into()))
        );
        assert_eq!(parse_statsd_address(""), Ok(None));
        for bad in ["127.0.0.1", "::1:8125", "host:0", "unix:///run/statsd.sock"] {
            assert!(parse_statsd_address(bad).is_err(), "{bad}");
        }
    }
}
