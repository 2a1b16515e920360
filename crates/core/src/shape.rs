//! The shapes of the identifiers a plan names, checked byte by byte. A regex engine would add
//! a few hundred kilobytes to every function for nine fixed patterns; each check below gives
//! its regular expression, and a test holds the two to the same answers.
//!
//! Every class is ASCII: a non-ASCII character is refused wherever it appears (also where a
//! Unicode-aware `\d` would accept other scripts' digits, which no AWS identifier contains).

fn lower_digit(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn word_dash(b: u8) -> bool {
    alnum(b) || b == b'_' || b == b'-'
}

/// `s` is `min..=max` bytes long and every byte is in the class.
fn run(s: &str, min: usize, max: usize, class: impl Fn(u8) -> bool) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(class)
}

/// A first byte of one class, then `0..=rest_max` bytes of another.
fn led(s: &str, first: impl Fn(u8) -> bool, rest_max: usize, rest: impl Fn(u8) -> bool) -> bool {
    match s.as_bytes().split_first() {
        Some((&b, tail)) => first(b) && tail.len() <= rest_max && tail.iter().all(|&c| rest(c)),
        None => false,
    }
}

/// `^[a-z0-9][a-z0-9-]{0,47}$`: an application's name.
pub fn application_name(s: &str) -> bool {
    led(s, lower_digit, 47, |b| lower_digit(b) || b == b'-')
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`: an approval gate's name.
pub fn gate_name(s: &str) -> bool {
    led(s, lower_digit, 62, |b| lower_digit(b) || b == b'-')
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`: a wave's name.
pub fn wave_name(s: &str) -> bool {
    led(s, alnum, 63, |b| word_dash(b) || b == b'.')
}

/// `^[A-Z0-9]{2,32}$`: a Route 53 hosted zone id.
pub fn hosted_zone_id(s: &str) -> bool {
    run(s, 2, 32, |b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `^s-[0-9a-f]{17}$`: an MGN source server id.
pub fn mgn_source_server_id(s: &str) -> bool {
    s.strip_prefix("s-").is_some_and(|h| {
        run(h, 17, 17, |b| {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        })
    })
}

/// `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`: a UUID
/// (a Route 53 health check id).
pub fn uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| run(g, n, n, |b| b.is_ascii_hexdigit()))
}

/// `^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)$`: one label of a DNS name.
pub fn host_label(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let b = s.as_bytes();
    match b.len() {
        0 => false,
        1 => alnum(b[0]) || b[0] == b'_',
        n => {
            n <= 63
                && (alnum(b[0]) || b[0] == b'_')
                && alnum(b[n - 1])
                && b[1..n - 1].iter().all(|&c| word_dash(c))
        }
    }
}

/// `arn:aws[a-z-]*:SERVICE:[a-z0-9-]+:\d{12}:KIND:` and the rest of an ARN, or `None`.
fn arn_resource<'a>(s: &'a str, service: &str, kind: &str) -> Option<&'a str> {
    let mut parts = s.splitn(7, ':');
    let mut next = || parts.next().unwrap_or_default();
    let (arn, partition, svc, region, account, k) =
        (next(), next(), next(), next(), next(), next());
    let resource = parts.next()?;
    let ok = arn == "arn"
        && partition
            .strip_prefix("aws")
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        && svc == service
        && run(region, 1, usize::MAX, |b| lower_digit(b) || b == b'-')
        && run(account, 12, 12, |b| b.is_ascii_digit())
        && k == kind;
    ok.then_some(resource)
}

/// `^arn:aws[a-z-]*:dms:[a-z0-9-]+:\d{12}:task:[A-Za-z0-9_-]{1,255}$`: a DMS task's ARN.
pub fn dms_task_arn(s: &str) -> bool {
    arn_resource(s, "dms", "task").is_some_and(|id| run(id, 1, 255, word_dash))
}

/// `^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$`:
/// a Lambda function's ARN, with an optional version or alias.
pub fn lambda_function_arn(s: &str) -> bool {
    arn_resource(s, "lambda", "function").is_some_and(|rest| {
        let (name, qualifier) = match rest.split_once(':') {
            Some((n, q)) => (n, Some(q)),
            None => (rest, None),
        };
        run(name, 1, 64, word_dash)
            && qualifier.is_none_or(|q| run(q, 1, 128, |b| word_dash(b) || b == b'$'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&str) -> bool;

    /// Each check, its regular expression (`\d` spelt `[0-9]`, as the checks mean it), and
    /// strings it accepts, from which the test derives near misses.
    fn cases() -> Vec<(Check, &'static str, Vec<&'static str>)> {
        vec![
            (
                application_name,
                r"^[a-z0-9][a-z0-9-]{0,47}$",
                vec!["orders", "a", "0-x-", "orders-eu-1"],
            ),
            (
                gate_name,
                r"^[a-z0-9][a-z0-9-]{0,62}$",
                vec!["before-50", "x"],
            ),
            (
                wave_name,
                r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                vec!["wave-1", "W.2_b", "9"],
            ),
            (
                hosted_zone_id,
                r"^[A-Z0-9]{2,32}$",
                vec!["Z0123456789", "Z2FDTNDATAQYW2"],
            ),
            (
                mgn_source_server_id,
                r"^s-[0-9a-f]{17}$",
                vec!["s-0123456789abcdef0"],
            ),
            (
                uuid,
                r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                vec!["abcdef01-2345-6789-ABCD-ef0123456789"],
            ),
            (
                host_label,
                r"^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)$",
                vec!["*", "www", "_dmarc", "a", "green-lb", "x1"],
            ),
            (
                dms_task_arn,
                r"^arn:aws[a-z-]*:dms:[a-z0-9-]+:[0-9]{12}:task:[A-Za-z0-9_-]{1,255}$",
                vec![
                    "arn:aws:dms:us-east-1:123456789012:task:ORDERS",
                    "arn:aws-us-gov:dms:us-gov-west-1:123456789012:task:a_b-C",
                ],
            ),
            (
                lambda_function_arn,
                r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$",
                vec![
                    "arn:aws:lambda:eu-west-1:123456789012:function:sync-orders",
                    "arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST",
                    "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:live",
                ],
            ),
        ]
    }

    /// A small deterministic generator (xorshift), enough to walk around each accepted string.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Inserts, deletes, replaces and repeats characters, including the classes' edges, ':',
    /// '$', '*', '.', and non-ASCII letters and digits.
    fn mutate(s: &str, rng: &mut Rng) -> String {
        const ALPHABET: &[char] = &[
            'a', 'f', 'g', 'z', 'A', 'F', 'G', 'Z', '0', '9', '-', '_', '.', ':', '$', '*', ' ',
            '/', 'é', '٣', 's',
        ];
        let mut c: Vec<char> = s.chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(c.len() + 1);
            let ch = ALPHABET[rng.below(ALPHABET.len())];
            match rng.below(5) {
                0 => c.insert(at, ch),
                1 if at < c.len() => {
                    c.remove(at);
                }
                2 if at < c.len() => c[at] = ch,
                3 => {
                    let n = rng.below(70);
                    c.splice(at..at, std::iter::repeat_n(ch, n));
                }
                _ => c.truncate(at),
            }
        }
        c.into_iter().collect()
    }

    #[test]
    fn each_check_answers_as_its_regular_expression() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for (check, pattern, accepted) in cases() {
            let re = regex::Regex::new(pattern).unwrap();
            let (mut yes, mut no) = (0, 0);
            for good in &accepted {
                assert!(check(good), "{pattern} refuses {good:?}");
                for _ in 0..4000 {
                    let s = mutate(good, &mut rng);
                    assert_eq!(check(&s), re.is_match(&s), "{pattern} on {s:?}");
                    if re.is_match(&s) {
                        yes += 1
                    } else {
                        no += 1
                    }
                }
            }
            // The walk reached both answers, or the comparison proved little.
            assert!(
                yes > 50 && no > 50,
                "{pattern}: {yes} accepted, {no} refused"
            );
        }
    }

    #[test]
    fn lengths_at_the_edges() {
        assert!(application_name(&"a".repeat(48)) && !application_name(&"a".repeat(49)));
        assert!(gate_name(&"a".repeat(63)) && !gate_name(&"a".repeat(64)));
        assert!(wave_name(&"a".repeat(64)) && !wave_name(&"a".repeat(65)));
        assert!(host_label(&"a".repeat(63)) && !host_label(&"a".repeat(64)));
        assert!(!hosted_zone_id("Z") && hosted_zone_id("Z1"));
        assert!(!dms_task_arn("arn:aws:dms:us-east-1:12345678901:task:X"));
        assert!(!dms_task_arn("arn:aws:dms::123456789012:task:X"));
        assert!(!lambda_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:f:"
        ));
        assert!(!uuid("abcdef01-2345-6789-abcd-ef0123456789-0"));
        // Another script's digits are not an account id.
        assert!(!dms_task_arn("arn:aws:dms:us-east-1:١٢٣٤٥٦٧٨٩٠١٢:task:X"));
    }
}
