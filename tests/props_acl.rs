//! Properties of ACL matching and loading (proptest).

use proptest::prelude::*;
use smokescreen::core::acl::{parse_glob, Acl, Decision, GlobSet, Reason};

/// A DNS label; `--` in positions 3-4 is left out (that is the reserved
/// `xn--` form, which must be valid punycode to load: `xn--0` is not).
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
        .prop_filter("reserved xn-- style label", |l| l.get(2..4) != Some("--"))
}

/// A DNS name whose last label starts with a letter (a numeric last label
/// is an IPv4 spelling, refused in ACL entries).
fn name(max_labels: usize) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 0..max_labels),
        "[a-z][a-z0-9]{0,5}",
    )
        .prop_map(|(mut l, last)| {
            l.push(last);
            l.join(".")
        })
}

/// Change the case of the ASCII letters chosen by `mask`.
fn recase(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
        .collect()
}

/// An enforce ACL whose only allowances are `globs`, with a global deny
/// list, so matching shows up in the decision reason.
fn acl_with(globs: &[String], deny: &[String]) -> Acl {
    let quote = |v: &[String]| {
        v.iter()
            .map(|g| format!("\"{g}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "version: v1\nservices:\n  - name: svc\n    project: p\n    action: enforce\n    allowed_domains: [{}]\nglobal_deny_list: [{}]\n",
        quote(globs),
        quote(deny)
    );
    match Acl::from_yaml(&text, &[]) {
        Ok((acl, _)) => acl,
        Err(e) => panic!("generated ACL does not load: {e}\n{text}"),
    }
}

/// The obvious linear reading of the glob rules, to check the index against.
fn naive_matches(globs: &[String], host: &str) -> bool {
    globs.iter().any(|g| match g.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => g == host,
    })
}

fn glob() -> impl Strategy<Value = String> {
    (any::<bool>(), name(3)).prop_map(|(wild, n)| if wild { format!("*.{n}") } else { n })
}

proptest! {
    #[test]
    fn decision_invariant_under_case_and_trailing_dot(
        globs in prop::collection::vec(glob(), 0..6),
        deny in prop::collection::vec(glob(), 0..4),
        host in name(5),
        mask in prop::collection::vec(any::<bool>(), 1..8),
        dot in any::<bool>(),
    ) {
        let acl = acl_with(&globs, &deny);
        let base = acl.decide("svc", &host);
        let mut variant = recase(&host, &mask);
        if dot {
            variant.push('.');
        }
        prop_assert_eq!(acl.decide("svc", &variant), base);
    }

    #[test]
    fn wildcard_never_matches_its_apex_and_matches_every_child(
        suffix in name(3),
        child in name(3),
    ) {
        let acl = acl_with(&[format!("*.{suffix}")], &[]);
        prop_assert_eq!(acl.decide("svc", &suffix).reason, Reason::EnforcePolicy);
        let below = format!("{child}.{suffix}");
        prop_assert_eq!(acl.decide("svc", &below).reason, Reason::AllowedDomain);
    }

    #[test]
    fn one_glob_matches_as_a_set_holding_only_it(
        g in glob(),
        host in name(5),
        prefix in name(2),
    ) {
        let parsed = parse_glob(&g).expect("generated globs are valid");
        let mut set = GlobSet::default();
        set.insert(parsed.clone());
        let suffix = g.trim_start_matches("*.");
        for h in [host.clone(), suffix.to_string(), format!("{prefix}.{suffix}")] {
            prop_assert_eq!(parsed.matches(&h), set.matches(&h), "{} on {}", g, h);
        }
    }

    #[test]
    fn indexed_matching_agrees_with_linear_matching(
        globs in prop::collection::vec(glob(), 0..8),
        host in name(5),
        reuse in any::<prop::sample::Index>(),
        prefix in name(2),
    ) {
        let mut set = GlobSet::default();
        for g in &globs {
            match parse_glob(g) {
                Ok(parsed) => set.insert(parsed),
                Err(e) => panic!("generated glob {g:?} refused: {e}"),
            }
        }
        prop_assert_eq!(set.matches(&host), naive_matches(&globs, &host));
        // Also try a host built from one of the globs, so matches are common.
        if !globs.is_empty() {
            let g = reuse.get(&globs);
            let near = match g.strip_prefix("*.") {
                Some(s) => format!("{prefix}.{s}"),
                None => g.clone(),
            };
            prop_assert!(set.matches(&near));
            prop_assert_eq!(set.matches(&near), naive_matches(&globs, &near));
        }
    }

    #[test]
    fn decide_never_panics(
        role in prop_oneof![Just("svc".to_owned()), any::<String>()],
        host in any::<String>(),
    ) {
        let acl = acl_with(&["*.example.com".into(), "fly.io".into()], &["*.internal".into()]);
        let d: Decision = acl.decide(&role, &host);
        let want = if role == "svc" { "p" } else { "" };
        prop_assert_eq!(d.project.as_str(), want);
    }

    #[test]
    fn decide_never_panics_on_hosts_near_the_globs(host in "[a-zA-Z.\\-é0-9 ]{0,40}") {
        let acl = acl_with(&["*.example.com".into()], &["*.internal".into()]);
        let _ = acl.decide("svc", &host);
        let _ = acl.decide("other", &host);
    }

    #[test]
    fn from_yaml_never_panics(text in any::<String>()) {
        let _ = Acl::from_yaml(&text, &[]);
    }

    #[test]
    fn from_yaml_never_panics_on_yaml_like_text(
        text in "(version: v1\n|services:\n|  - name: [a-z]{1,3}\n|    action: (open|enforce|bogus)\n|    allowed_domains: \\[[*a-z.]{0,8}\\]\n|default: \\{\\}\n|global_deny_list: \\[\"[*.A-Za-zé]{0,6}\"\\]\n|- \n|: \n|\\{\\[\n){0,12}"
    ) {
        let _ = Acl::from_yaml(&text, &[]);
    }
}
