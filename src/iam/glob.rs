//! `*` / `?` wildcard matching as IAM uses it in actions and ARNs.

/// True when `text` matches `pattern` (`*` any run of characters, `?` one
/// character, everything else literal). Iterative, linear in practice.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Case-insensitive [`matches`] (IAM action names).
pub(crate) fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("rds-db:*", "rds-db:connect"));
        assert!(matches("rds-db:conn?ct", "rds-db:connect"));
        assert!(!matches("rds-db:conn?ct", "rds-db:connnect"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("*/pgmonitor", "dbuser:db-1/pgmonitor"));
        assert!(!matches("*/pgmonitor", "dbuser:db-1/pgmonitor2"));
        assert!(matches_ignore_case("RDS-DB:Connect", "rds-db:connect"));
        assert!(!matches("RDS-DB:Connect", "rds-db:connect"));
    }
}
