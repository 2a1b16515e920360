//! Record sets as Route 53 holds them beyond one value per side: value records of several
//! values (kept exactly through shifts and rollbacks) and the routing policies the cutover does
//! not shift (failover, latency, geolocation, multivalue answer, IP-based), refused at pre-flight
//! with DNS untouched.

mod common;
use common::{edit, run, text};

const RECORD: &str = "{name: billing.example.com., type: A, ttl: 60, values: [198.51.100.10]}";

/// examples/mgn-happy-path with blue and green each several addresses.
fn several(world_edits: &[(&str, &str)]) -> cutover_cli::local::LocalRun {
    let plan = edit(
        text("mgn-happy-path", "plan.yaml"),
        &[
            (
                "blue:  {setIdentifier: old-dc, value: 198.51.100.10}",
                "blue:  {setIdentifier: old-dc, values: [198.51.100.11, 198.51.100.10]}",
            ),
            (
                "green: {setIdentifier: aws, value: 203.0.113.20}",
                "green: {setIdentifier: aws, values: [203.0.113.20, 203.0.113.21]}",
            ),
        ],
    );
    let mut edits = vec![(
        RECORD,
        "{name: billing.example.com., type: A, ttl: 60, values: [198.51.100.10, 198.51.100.11]}",
    )];
    edits.extend_from_slice(world_edits);
    run(
        &plan,
        &edit(text("mgn-happy-path", "world.yaml"), &edits),
        false,
    )
}

#[test]
fn several_values_per_side_shift_together_and_are_kept_exactly() {
    let r = several(&[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    let green = r
        .report
        .dns
        .iter()
        .find(|d| d.set_identifier.as_deref() == Some("aws"))
        .expect("green record");
    assert_eq!(green.weight, Some(100));
    assert_eq!(green.values, vec!["203.0.113.20", "203.0.113.21"]);
    let blue = r
        .report
        .dns
        .iter()
        .find(|d| d.set_identifier.as_deref() == Some("old-dc"))
        .expect("blue record");
    assert_eq!(blue.weight, Some(0));
    // Blue's values as the plan names them; the plan lists them in another order than DNS held
    // them, which matches (Route 53 keeps values as a set).
    assert_eq!(blue.values, vec!["198.51.100.11", "198.51.100.10"]);
}

#[test]
fn a_rollback_restores_several_values_in_their_original_order() {
    let r = several(&[(
        r#"http: {"http://203.0.113.20/healthz": [[0, 200]]}"#,
        r#"http: {"http://203.0.113.20/healthz": [[0, 200], [400, 503]]}"#,
    )]);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.error);
    assert_eq!(r.report.dns.len(), 1, "{:?}", r.report.dns);
    let d = &r.report.dns[0];
    assert_eq!(
        (d.set_identifier.as_deref(), d.weight, d.ttl),
        (None, None, Some(60))
    );
    assert_eq!(d.values, vec!["198.51.100.10", "198.51.100.11"]);
}

#[test]
fn plan_check_keeps_several_values_sound() {
    let plan = text("mgn-happy-path", "plan.yaml");
    let refused = |from: &str, to: &str| match cutover_core::plan::Plan::parse(
        &edit(plan.clone(), &[(from, to)]),
        false,
    ) {
        Ok(_) => String::new(),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let blue = "blue:  {setIdentifier: old-dc, value: 198.51.100.10}";
    let e = refused(
        blue,
        "blue:  {setIdentifier: old-dc, values: [198.51.100.10, 198.51.100.10]}",
    );
    assert!(
        e.contains("dns.blue.values[1]: '198.51.100.10' is listed twice"),
        "{e}"
    );
    let e = refused(
        blue,
        "blue:  {setIdentifier: old-dc, values: [198.51.100.10, blue.example.com]}",
    );
    assert!(
        e.contains("dns.blue.values[1]: 'blue.example.com' is not a valid A value"),
        "{e}"
    );
    let e = refused(blue, "blue:  {setIdentifier: old-dc, values: []}");
    assert!(e.contains("dns.blue.values: holds 0 values"), "{e}");
    let e = refused(
        blue,
        "blue:  {setIdentifier: old-dc, value: 198.51.100.10, values: [198.51.100.11]}",
    );
    assert!(
        e.contains("dns.blue: takes one of value, values or alias"),
        "{e}"
    );
    let e = refused(
        "green: {setIdentifier: aws, value: 203.0.113.20}",
        "green: {setIdentifier: aws, values: [198.51.100.10]}",
    );
    assert!(
        e.contains("dns.green.values: must differ from dns.blue.value"),
        "{e}"
    );
    // A CNAME holds one value.
    let dms = text("dms-happy-path", "plan.yaml");
    let e = match cutover_core::plan::Plan::parse(
        &edit(
            dms,
            &[(
                "value: blue-lb.example.com",
                "values: [blue-lb.example.com, blue-2.example.com]",
            )],
        ),
        false,
    ) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("a CNAME record holds exactly one value"), "{e}");
}

#[test]
fn record_sets_of_other_routing_policies_are_refused_with_dns_untouched() {
    let plan = text("mgn-happy-path", "plan.yaml");
    for (policy, records) in [
        (
            "failover",
            "{name: billing.example.com., type: A, ttl: 60, setIdentifier: primary, failover: PRIMARY, values: [198.51.100.10]}\n        - {name: billing.example.com., type: A, ttl: 60, setIdentifier: secondary, failover: SECONDARY, values: [198.51.100.99]}",
        ),
        (
            "latency",
            "{name: billing.example.com., type: A, ttl: 60, setIdentifier: use1, region: us-east-1, values: [198.51.100.10]}",
        ),
        (
            "geolocation",
            "{name: billing.example.com., type: A, ttl: 60, setIdentifier: eu, geoLocation: {continentCode: EU}, values: [198.51.100.10]}",
        ),
        (
            "multivalue answer",
            "{name: billing.example.com., type: A, ttl: 60, setIdentifier: one, multiValueAnswer: true, values: [198.51.100.10]}",
        ),
        (
            "IP-based",
            "{name: billing.example.com., type: A, ttl: 60, setIdentifier: office, cidrRoutingConfig: {collectionId: c8c02a84-aaaa-bbbb-cccc-123456789012, locationName: office}, values: [198.51.100.10]}",
        ),
    ] {
        let world = edit(text("mgn-happy-path", "world.yaml"), &[(RECORD, records)]);
        let before = cutover_sim::WorldSpec::parse(&world, false).expect("world");
        let r = run(&plan, &world, false);
        assert_eq!(r.report.outcome, "failed", "{policy}: {:?}", r.report.error);
        let why = format!("{:?}", r.report.cause);
        assert!(
            why.contains(&format!("uses {policy} routing")) && why.contains("dns.recordName"),
            "{policy}: {why}"
        );
        assert_eq!(r.report.world.dns_changes_applied, 0, "{policy}");
        assert_eq!(r.report.world.mgn_cutovers, 0, "{policy}");
        assert_eq!(
            r.report.dns, before.route53.zones[0].records,
            "{policy}: DNS as it was"
        );
    }
}

#[test]
fn a_world_record_holds_one_routing_policy_with_its_set_identifier() {
    let world = text("mgn-happy-path", "world.yaml");
    for bad in [
        "{name: billing.example.com., type: A, ttl: 60, failover: PRIMARY, values: [198.51.100.10]}",
        "{name: billing.example.com., type: A, ttl: 60, setIdentifier: x, failover: PRIMARY, region: us-east-1, values: [198.51.100.10]}",
        "{name: billing.example.com., type: A, ttl: 60, setIdentifier: x, failover: TERTIARY, values: [198.51.100.10]}",
    ] {
        let e = cutover_sim::WorldSpec::parse(&edit(world.clone(), &[(RECORD, bad)]), false)
            .err()
            .unwrap_or_else(|| panic!("accepted {bad}"))
            .to_string();
        assert!(e.contains("route53.zones[0].records[0]"), "{e}");
    }
}
