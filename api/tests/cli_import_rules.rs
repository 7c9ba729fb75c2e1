//! `dealtrail import` refuses a file with one bad line, naming the line and the rule, and
//! writes nothing of it.

#[path = "support/cli.rs"]
mod cli;
use cli::dealtrail;

/// A line of canonical NDJSON; `n` makes the id unique.
fn line(n: u32, stream: &str, ty: &str, at: &str, data: &str) -> String {
    format!(
        r#"{{"id":"00000000-0000-7000-8000-{n:012}","stream":"{stream}","type":"{ty}","occurred_at":"{at}","recorded_at":"{at}","actor":"wukong","data":{data}}}"#
    )
}

/// A valid story: wukong and bajie join, a customer owned by wukong, a deal opened and moved
/// to presentation, a pool customer.
fn good() -> Vec<String> {
    let joined = |n: u32, rep: &str| {
        let data = format!(r#"{{"rep":"{rep}","name":"{rep}","team":"east"}}"#);
        line(n, "org-acme", "RepJoined", "2026-03-01T08:00:00Z", &data)
    };
    vec![
        joined(7, "wukong"),
        joined(8, "bajie"),
        line(
            1,
            "customer-C-1",
            "CustomerRegistered",
            "2026-03-01T09:00:00Z",
            r#"{"name":"Acme","owner":"wukong"}"#,
        ),
        line(
            2,
            "deal-D-1",
            "DealOpened",
            "2026-03-02T09:00:00Z",
            r#"{"customer_id":"C-1","owner":"wukong","title":"ERP","amount":1000,"stage":"qualified"}"#,
        ),
        line(
            3,
            "deal-D-1",
            "DealStageChanged",
            "2026-03-03T09:00:00Z",
            r#"{"from":"qualified","to":"presentation"}"#,
        ),
        line(
            4,
            "customer-C-2",
            "CustomerRegistered",
            "2026-03-04T09:00:00Z",
            r#"{"name":"Pool Co"}"#,
        ),
    ]
}

#[test]
fn one_bad_line_refuses_the_whole_file() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"id\": ".to_string(), "malformed JSON"),
        (
            "unknown type",
            line(9, "deal-D-1", "DealExploded", "2026-03-05T09:00:00Z", "{}"),
            "DealExploded",
        ),
        (
            "stage from is not the current stage",
            line(
                9,
                "deal-D-1",
                "DealStageChanged",
                "2026-03-05T09:00:00Z",
                r#"{"from":"qualified","to":"quote"}"#,
            ),
            "data.from",
        ),
        (
            "unknown stage",
            line(
                9,
                "deal-D-1",
                "DealStageChanged",
                "2026-03-05T09:00:00Z",
                r#"{"from":"presentation","to":"celebration"}"#,
            ),
            "celebration",
        ),
        (
            "payment on an open deal",
            line(
                9,
                "deal-D-1",
                "PaymentReceived",
                "2026-03-05T09:00:00Z",
                r#"{"amount":10}"#,
            ),
            "PaymentReceived",
        ),
        (
            "claim of an owned customer",
            line(
                9,
                "customer-C-1",
                "CustomerClaimed",
                "2026-03-05T09:00:00Z",
                r#"{"rep":"bajie"}"#,
            ),
            "customer",
        ),
        (
            "far-future time",
            line(
                9,
                "customer-C-2",
                "CustomerClaimed",
                "2999-01-01T00:00:00Z",
                r#"{"rep":"bajie"}"#,
            ),
            "2999",
        ),
        (
            "event before the stream's opening",
            line(
                9,
                "deal-D-1",
                "ActivityLogged",
                "2026-01-01T09:00:00Z",
                r#"{"kind":"call","rep":"wukong"}"#,
            ),
            "occurred_at",
        ),
        (
            "stream not opened",
            line(
                9,
                "deal-D-9",
                "DealWon",
                "2026-03-05T09:00:00Z",
                r#"{"amount":10}"#,
            ),
            "deal-D-9",
        ),
        (
            "deal on another rep's customer",
            line(
                9,
                "deal-D-9",
                "DealOpened",
                "2026-03-05T09:00:00Z",
                r#"{"customer_id":"C-1","owner":"bajie","title":"x","amount":1,"stage":"qualified"}"#,
            ),
            "deal.customer_owner",
        ),
        (
            "activity by a rep who never joined",
            line(
                9,
                "deal-D-1",
                "ActivityLogged",
                "2026-03-05T09:00:00Z",
                r#"{"kind":"call","rep":"niumowang"}"#,
            ),
            "rep.active",
        ),
        (
            "negative amount",
            line(
                9,
                "deal-D-1",
                "DealAmountChanged",
                "2026-03-05T09:00:00Z",
                r#"{"amount":-5}"#,
            ),
            "amount",
        ),
        (
            "unknown stream category",
            line(
                9,
                "ticket-T-1",
                "CustomerRegistered",
                "2026-03-05T09:00:00Z",
                r#"{"name":"x"}"#,
            ),
            "ticket",
        ),
    ];
    for (what, bad, needle) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut lines = good();
        lines.insert(5, bad); // line 6 of the file
        let file = tmp.path().join("in.ndjson");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(5), "{what}: {err}");
        assert!(err.contains("line 6"), "{what}: no line number in {err}");
        assert!(err.contains(needle), "{what}: {needle:?} not in {err}");
        if data.exists() {
            let out = dealtrail(&data, &["export"]);
            assert!(out.stdout.is_empty(), "{what}: something was written");
        }
    }
}

#[test]
fn a_valid_file_imports_and_a_rerun_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("in.ndjson");
    std::fs::write(&file, good().join("\n") + "\n").unwrap();
    for _ in 0..2 {
        let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let out = dealtrail(&data, &["export"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}

#[test]
fn a_deals_customer_is_read_from_the_store_and_from_earlier_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = tmp.path().join("first.ndjson");
    std::fs::write(&first, good().join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deal = |n: u32, id: &str, customer: &str| {
        line(
            n,
            &format!("deal-{id}"),
            "DealOpened",
            "2026-03-06T09:00:00Z",
            &format!(
                r#"{{"customer_id":"{customer}","owner":"bajie","title":"x","amount":1,"stage":"qualified"}}"#
            ),
        )
    };
    let second = tmp.path().join("second.ndjson");
    // C-1 (wukong's, in the store) refuses bajie's deal even after a pool deal passed.
    std::fs::write(
        &second,
        [deal(20, "D-20", "C-2"), deal(21, "D-21", "C-1")].join("\n") + "\n",
    )
    .unwrap();
    let o = dealtrail(&data, &["import", second.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("line 2") && err.contains("deal.customer_owner"),
        "{err}"
    );
    // Assigned to bajie on an earlier line of the same file: now it is bajie's.
    let third = tmp.path().join("third.ndjson");
    let assign = line(
        23,
        "customer-C-1",
        "CustomerAssigned",
        "2026-03-06T08:00:00Z",
        r#"{"rep":"bajie"}"#,
    );
    std::fs::write(&third, [assign, deal(21, "D-21", "C-1")].join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", third.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Found while writing the `import_lines` fuzz target's invariant (a file the dry run
/// accepts is appended without error): a line repeating the id of an event already in the
/// log, with the same stream, type and data but other metadata (or another `occurred_at`),
/// passed the dry run as "already present", and the append then refused it as an id
/// conflict, after the chunks of lines before it had been written.
#[test]
fn a_logged_id_with_other_metadata_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = tmp.path().join("first.ndjson");
    std::fs::write(&first, good().join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // More than one append chunk (1000 lines) of new customers, then line 1 of the first
    // file again with metadata it did not have.
    let mut lines: Vec<String> = (0..1200)
        .map(|i| {
            line(
                100 + i,
                &format!("customer-N-{i}"),
                "CustomerRegistered",
                "2026-03-05T09:00:00Z",
                r#"{"name":"New Co"}"#,
            )
        })
        .collect();
    let repeated = good()[0].replace(r#","data""#, r#","metadata":{"source":"crm-2"},"data""#);
    assert_ne!(repeated, good()[0]);
    lines.push(repeated);
    let second = tmp.path().join("second.ndjson");
    std::fs::write(&second, lines.join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", second.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("line 1201"), "no line number in {err}");
    let out = dealtrail(&data, &["export"]);
    let exported = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        exported,
        good().len(),
        "the refused file was partly written"
    );
}

#[test]
fn the_organisation_is_folded_in_business_order_as_the_rules_fold_it() {
    // Two pipelines, the second line back-dated: in business order (the one ordering rule,
    // which the rules of an HTTP append follow) the pipeline in force is the first line's,
    // so a deal opened in its stage `beta` is valid; folded in file order it would be the
    // back-dated one's, which has no `beta`.
    let pipeline = |n: u32, at: &str, ids: &[&str]| {
        let stages: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"id":"{id}","name":"{id}","probability":0.5}}"#))
            .collect();
        let data = format!(r#"{{"stages":[{}]}}"#, stages.join(","));
        line(n, "org-acme", "PipelineDefined", at, &data)
    };
    let lines = [
        pipeline(11, "2026-03-01T12:00:00Z", &["alpha", "beta"]),
        pipeline(12, "2026-03-01T06:00:00Z", &["omega"]),
        line(
            13,
            "org-acme",
            "RepJoined",
            "2026-03-01T13:00:00Z",
            r#"{"rep":"wukong","name":"wukong","team":"east"}"#,
        ),
        line(
            14,
            "customer-C-1",
            "CustomerRegistered",
            "2026-03-02T09:00:00Z",
            r#"{"name":"Acme","owner":"wukong"}"#,
        ),
        line(
            15,
            "deal-D-1",
            "DealOpened",
            "2026-03-03T09:00:00Z",
            r#"{"customer_id":"C-1","owner":"wukong","title":"ERP","amount":1000,"stage":"beta"}"#,
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("in.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same once the pipelines are in the log: a second import folds them from the store.
    let more = [line(
        16,
        "deal-D-1",
        "DealStageChanged",
        "2026-03-04T09:00:00Z",
        r#"{"from":"beta","to":"alpha"}"#,
    )];
    let file2 = tmp.path().join("more.ndjson");
    std::fs::write(&file2, more.join("\n") + "\n").unwrap();
    let o = dealtrail(&data, &["import", file2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dealtrail(&data, &["export"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}
