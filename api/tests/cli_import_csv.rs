//! `dealtrail import --format csv`: other CRMs' exports (SPEC §4) through the binary.
//!
//! The samples in `fixtures/csv/` were written by hand for these tests; the expected counts
//! below were worked out from them by hand (see the comments), not read from the program.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::dealtrail;

/// `dealtrail import --profile PROFILE PATH`.
fn import(data: &Path, profile: &str, path: &str) -> Output {
    dealtrail(data, &["import", "--profile", profile, path])
}

/// A copy of the Salesforce v1 opportunities in `dir/sf/` with one edit (made once).
fn edited_opportunities(dir: &Path, from: &str, to: &str) -> String {
    let sf = dir.join("sf");
    std::fs::create_dir(&sf).unwrap();
    let text = std::fs::read_to_string(fixtures().join("salesforce-v1/Opportunity.csv")).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    std::fs::write(sf.join("Opportunity.csv"), text.replace(from, to)).unwrap();
    sf.display().to_string()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    o
}

/// The log, exported: one JSON value per event.
fn log(data: &Path) -> Vec<Value> {
    let out = ok(dealtrail(data, &["export"]));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("exported line"))
        .collect()
}

fn count_by_type(events: &[Value]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for e in events {
        *by.entry(e["type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    by
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn find<'a>(events: &'a [Value], stream: &str, ty: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["stream"] == stream && e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} on {stream}"))
}

/// Salesforce v1: 5 opportunities, 3 owners, 3 accounts and one opportunity without.
/// A1: Prospecting → Needs Analysis → Proposal (+ amount 100000 → 120000): 2 stage changes,
/// 1 amount change. A2: Qualification → Negotiation (+ amount) → Closed Won. A3: Prospecting
/// → Closed Lost. A4: Prospecting. A5: no history, opened in Needs Analysis.
fn salesforce_v1() -> BTreeMap<String, usize> {
    counts(&[
        ("PipelineDefined", 1),
        ("RepJoined", 3),
        ("CustomerRegistered", 4),
        ("DealOpened", 5),
        ("DealStageChanged", 3),
        ("DealAmountChanged", 2),
        ("DealWon", 1),
        ("DealLost", 1),
    ])
}

#[test]
fn salesforce_export_imports_with_its_pipeline_history_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(import(&data, "salesforce", &fixture("salesforce-v1")));
    assert!(stderr(&out).contains("20 new events"), "{}", stderr(&out));
    let events = log(&data);
    assert_eq!(count_by_type(&events), salesforce_v1());

    // The open stages by probability (Prospecting and Qualification tie at 10: by name).
    let pipeline = &find(&events, "org-main", "PipelineDefined")["data"]["stages"];
    let ids: Vec<&str> = pipeline
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "prospecting",
            "qualification",
            "needs_analysis",
            "proposal_price_quote",
            "negotiation_review"
        ]
    );
    assert_eq!(pipeline[3]["probability"], 0.75);

    // The first history row opens the deal with its stage and amount.
    let a1 = find(&events, "deal-0065g00000SfA1AAA1", "DealOpened");
    assert_eq!(a1["data"]["stage"], "prospecting");
    assert_eq!(a1["data"]["amount"], 100000.0);
    assert_eq!(a1["data"]["customer_id"], "0015g00000AcmeAAA");
    assert_eq!(a1["data"]["owner"], "0055g00000U1AAAAA");
    assert_eq!(a1["data"]["currency"], "USD");
    assert_eq!(a1["occurred_at"], "2024-03-01T09:00:00Z");
    // The close is dated by CloseDate (the history row was written a day later).
    let won = find(&events, "deal-0065g00000SfA2AAA2", "DealWon");
    assert_eq!(won["data"]["amount"], 45000.5);
    assert_eq!(won["occurred_at"], "2024-04-15T00:00:00Z");
    let lost = find(&events, "deal-0065g00000SfA3AAA3", "DealLost");
    assert_eq!(lost["data"]["reason"], "unknown");
    // The quoted multi-line name arrives whole.
    let a3 = find(&events, "deal-0065g00000SfA3AAA3", "DealOpened");
    assert_eq!(a3["data"]["title"], "Initech support\nphase 2");
    // No account: the customer `unknown`; a quoted comma stays in the account's name.
    let a4 = find(&events, "deal-0065g00000SfA4AAA4", "DealOpened");
    assert_eq!(a4["data"]["customer_id"], "unknown");
    let globex = find(&events, "customer-0015g00000GlobAAA", "CustomerRegistered");
    assert_eq!(globex["data"]["name"], "Globex, Inc.");
    // No history: opened in its current stage.
    let a5 = find(&events, "deal-0065g00000SfA5AAA5", "DealOpened");
    assert_eq!(a5["data"]["stage"], "needs_analysis");
    // Every event says where it came from.
    assert_eq!(
        a1["metadata"]["import_key"],
        "salesforce/deal/0065g00000SfA1AAA1/opened"
    );
    assert_eq!(a1["actor"], "import:salesforce");
}

#[test]
fn reimporting_the_same_export_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(import(&data, "salesforce", &fixture("salesforce-v1")));
    let before = log(&data);
    let again = ok(import(&data, "salesforce", &fixture("salesforce-v1")));
    assert!(
        stderr(&again).contains("0 new events, 20 already in the log"),
        "{}",
        stderr(&again)
    );
    assert_eq!(log(&data), before);
}

#[test]
fn an_updated_export_appends_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(import(&data, "salesforce", &fixture("salesforce-v1")));
    let v1 = log(&data);
    // v2: A1 moved on to Negotiation/Review, A4 was won, A6 is new (with a new owner), and
    // A5's amount was edited in place (no history row: the log keeps the first version).
    let out = ok(import(&data, "salesforce", &fixture("salesforce-v2")));
    assert!(stderr(&out).contains("4 new events"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 event already in the log differs"),
        "{}",
        stderr(&out)
    );
    let both = log(&data);
    assert_eq!(&both[..v1.len()], &v1[..], "nothing before is touched");
    let new = &both[v1.len()..];
    let mut got: Vec<(String, String)> = new
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().into(),
                e["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("deal-0065g00000SfA1AAA1", "DealStageChanged"),
        ("deal-0065g00000SfA4AAA4", "DealWon"),
        ("deal-0065g00000SfA6AAA6", "DealOpened"),
        ("org-main", "RepJoined"),
    ];
    assert_eq!(got, want.map(|(s, t)| (s.to_string(), t.to_string())));
    assert_eq!(
        find(new, "deal-0065g00000SfA1AAA1", "DealStageChanged")["data"]["from"],
        "proposal_price_quote"
    );

    // The same events as importing v2 alone: same ids; only A5's opening differs.
    let fresh_dir = dir.path().join("fresh");
    ok(import(&fresh_dir, "salesforce", &fixture("salesforce-v2")));
    let fresh = log(&fresh_dir);
    let ids = |events: &[Value]| -> BTreeSet<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&both), ids(&fresh));
    let differing: Vec<&Value> = fresh
        .iter()
        .filter(|f| {
            let b = both.iter().find(|b| b["id"] == f["id"]).unwrap();
            (&b["data"], &b["occurred_at"]) != (&f["data"], &f["occurred_at"])
        })
        .collect();
    assert_eq!(differing.len(), 1);
    assert_eq!(differing[0]["stream"], "deal-0065g00000SfA5AAA5");
}

#[test]
fn a_bad_row_is_named_by_line_and_column_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(import(
        &data,
        "hubspot",
        &fixture("hubspot/hubspot-deals.csv"),
    ));
    let before = log(&data);
    // A4 sits on line 6: the quoted name of A3 spans lines 4 and 5.
    let sf = edited_opportunities(dir.path(), "Prospecting,5000,", "Prospecting,5k,");
    let out = import(&data, "salesforce", &sf);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("Opportunity.csv: line 6, column 7 (Amount): \"5k\" is not an amount"),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(log(&data), before);
}

/// The two files are read side by side: the opportunities' problems come first, then the
/// history's in line order, rows naming no opportunity among them (A4's, whose own row is
/// refused, too).
#[test]
fn problems_of_both_files_are_named_in_file_and_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let sf = edited_opportunities(dir.path(), "Prospecting,5000,", "Prospecting,5k,");
    let history =
        std::fs::read_to_string(fixtures().join("salesforce-v1/OpportunityHistory.csv")).unwrap();
    let history = history
        .replacen(
            "0065g00000SfA3AAA3,Closed Lost",
            "0065g00000NoSuch001,Closed Lost",
            1,
        )
        .replacen("2024-03-20T15:00:00.000+0000", "later", 1);
    std::fs::write(Path::new(&sf).join("OpportunityHistory.csv"), history).unwrap();
    let data = dir.path().join("data");
    let out = dealtrail(&data, &["import", "--profile", "salesforce", &sf]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let msg = stderr(&out);
    let lines: Vec<&str> = msg.lines().collect();
    assert!(lines[0].contains("4 problems in the export"), "{msg}");
    assert!(
        lines[1].ends_with("Opportunity.csv: line 6, column 7 (Amount): \"5k\" is not an amount"),
        "{msg}"
    );
    assert!(
        lines[2].ends_with(
            "OpportunityHistory.csv: line 6, column 6 (CreatedDate): \"later\" is not a date or \
             time (e.g. 2024-03-01 or 2024-03-01T10:15:00Z)"
        ),
        "{msg}"
    );
    assert!(
        lines[3].ends_with(
            "OpportunityHistory.csv: line 9, column 1 (OpportunityId): no opportunity \
             0065g00000NoSuch001 in the Opportunity export"
        ),
        "{msg}"
    );
    assert!(lines[4].ends_with("line 10, column 1 (OpportunityId): no opportunity 0065g00000SfA4AAA4 in the Opportunity export"), "{msg}");
    assert!(!data.exists(), "nothing is written, not even a store");
}

#[test]
fn dry_run_counts_by_type_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(dealtrail(
        &data,
        &[
            "import",
            "--dry-run",
            "--profile",
            "salesforce",
            &fixture("salesforce-v1"),
        ],
    ));
    let text = stdout(&out);
    assert!(text.contains("20 new events would be appended"), "{text}");
    for (ty, n) in salesforce_v1() {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{ty} ")))
            .unwrap_or_else(|| panic!("{ty}: {text}"));
        assert!(line.trim_end().ends_with(&format!(" {n}")), "{line}");
    }
    assert!(!data.exists(), "a dry run creates no store");

    // With a bad row: the problem, with its line, and exit 5.
    let sf = edited_opportunities(dir.path(), "2024-05-02T14:00:00.000+0000", "soon");
    let out = dealtrail(
        &data,
        &["import", "--dry-run", "--profile", "salesforce", &sf],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("line 6, column 9 (CreatedDate)"),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists());
}

#[test]
fn hubspot_export_uses_its_date_entered_columns_as_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(import(
        &data,
        "hubspot",
        &fixture("hubspot/hubspot-deals.csv"),
    ));
    let events = log(&data);
    // 4 deals; 9001: 3 stage changes, 9002: 1 and won, 9003: 1 and lost, 9004: none.
    // Owners Jane Doe, John Smith, none; companies Wayne, Stark, Tyrell, none.
    assert_eq!(
        count_by_type(&events),
        counts(&[
            ("PipelineDefined", 1),
            ("RepJoined", 3),
            ("CustomerRegistered", 4),
            ("DealOpened", 4),
            ("DealStageChanged", 5),
            ("DealWon", 1),
            ("DealLost", 1),
        ])
    );
    let stages = &find(&events, "org-main", "PipelineDefined")["data"]["stages"];
    let ids: Vec<(&str, f64)> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap(),
                s["probability"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("appointment_scheduled", 0.2),
            ("qualified_to_buy", 0.4),
            ("presentation_scheduled", 0.6),
            ("contract_sent", 0.9)
        ]
    );
    let opened = find(&events, "deal-9001", "DealOpened");
    assert_eq!(opened["data"]["owner"], "jane-doe");
    assert_eq!(opened["data"]["customer_id"], "wayne-enterprises");
    assert_eq!(opened["data"]["stage"], "appointment_scheduled");
    let won = find(&events, "deal-9002", "DealWon");
    assert_eq!(
        won["occurred_at"], "2024-02-28T13:00:00Z",
        "dated by Close Date"
    );
    assert_eq!(won["data"]["amount"], 80000.0);
    assert_eq!(
        find(&events, "deal-9003", "DealLost")["data"]["reason"],
        "Went with competitor"
    );
    assert_eq!(
        find(&events, "deal-9004", "DealOpened")["data"]["owner"],
        "unassigned"
    );
}

#[test]
fn a_utf8_bom_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("sf");
    std::fs::create_dir(&sf).unwrap();
    for f in ["Opportunity.csv", "OpportunityHistory.csv"] {
        let text = std::fs::read(fixtures().join("salesforce-v1").join(f)).unwrap();
        std::fs::write(sf.join(f), [b"\xEF\xBB\xBF".as_slice(), &text].concat()).unwrap();
    }
    let (plain, bom) = (dir.path().join("plain"), dir.path().join("bom"));
    ok(import(&plain, "salesforce", &fixture("salesforce-v1")));
    ok(import(&bom, "salesforce", sf.to_str().unwrap()));
    let strip = |events: Vec<Value>| -> Vec<(Value, Value, Value)> {
        events
            .into_iter()
            .map(|e| (e["id"].clone(), e["data"].clone(), e["occurred_at"].clone()))
            .collect()
    };
    assert_eq!(strip(log(&plain)), strip(log(&bom)));
}

const CHINESE_MAPPING: &str = r#"
source = "xsy"
utc_offset = "+08:00"
currency = "CNY"

[columns]
deal_id = "商机编号"
title = "商机名称"
customer_name = "客户名称"
owner = "负责人"
amount = "金额"
stage = "阶段"
opened_at = "创建时间"
closed_at = "结单日期"
lost_reason = "输单原因"

[stages]
"初步接洽" = "qualified"
"方案报价" = "quote"
"赢单" = "won"
"输单" = "lost"

[reasons]
"价格太高" = "price"

[reps]
"张三" = "zhangsan"
"李四" = "lisi"

[[pipeline]]
id = "qualified"
name = "初步接洽"
probability = 0.1

[[pipeline]]
id = "quote"
name = "方案报价"
probability = 0.5
"#;

const CHINESE_EXPORT: &str =
    "商机编号;商机名称;客户名称;负责人;金额;阶段;创建时间;结单日期;输单原因
SJ-001;华东区ERP项目;上海华联;张三;120,000.00;方案报价;2024/3/1 9:00;;
SJ-002;CRM续约;北京同仁;李四;45,000.00;赢单;2024/2/10 8:00;2024/4/15;
SJ-003;售后服务包;上海华联;张三;30,000.00;输单;2024/3/15 12:00;2024/5/20;价格太高
";

#[test]
fn a_gbk_export_with_semicolons_imports_through_a_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (encoded, _, unmappable) = encoding_rs::GBK.encode(CHINESE_EXPORT);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&encoded).is_err(), "really not UTF-8");
    // 张三 is D5C5 C8FD in GBK: the file holds what a GBK export holds.
    assert!(encoded.windows(4).any(|w| w == [0xD5, 0xC5, 0xC8, 0xFD]));
    let file = dir.path().join("商机.csv");
    std::fs::write(&file, &encoded).unwrap();
    let mapping = dir.path().join("xsy.toml");
    std::fs::write(&mapping, CHINESE_MAPPING).unwrap();
    let data = dir.path().join("data");
    let out = ok(dealtrail(
        &data,
        &[
            "import",
            "--mapping",
            mapping.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    ));
    assert!(stderr(&out).contains("read as GBK"), "{}", stderr(&out));
    let events = log(&data);
    // 3 deals, 2 reps, 2 customers, the pipeline; SJ-002 won, SJ-003 lost.
    assert_eq!(
        count_by_type(&events),
        counts(&[
            ("PipelineDefined", 1),
            ("RepJoined", 2),
            ("CustomerRegistered", 2),
            ("DealOpened", 3),
            ("DealWon", 1),
            ("DealLost", 1),
        ])
    );
    let opened = find(&events, "deal-SJ-001", "DealOpened");
    assert_eq!(opened["data"]["title"], "华东区ERP项目");
    assert_eq!(opened["data"]["owner"], "zhangsan");
    assert_eq!(opened["data"]["amount"], 120000.0);
    assert_eq!(opened["data"]["stage"], "quote");
    assert_eq!(opened["data"]["currency"], "CNY");
    assert_eq!(
        opened["occurred_at"], "2024-03-01T01:00:00Z",
        "9:00 in Beijing"
    );
    let customer = opened["data"]["customer_id"].as_str().unwrap();
    let registered = find(
        &events,
        &format!("customer-{customer}"),
        "CustomerRegistered",
    );
    assert_eq!(registered["data"]["name"], "上海华联");
    assert_eq!(
        find(&events, "deal-SJ-003", "DealLost")["data"]["reason"],
        "price"
    );
    let joined: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "RepJoined")
        .map(|e| e["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(joined, BTreeSet::from(["张三", "李四"]));

    // Separator and encoding given instead of guessed: the same events.
    let (m, f) = (mapping.to_str().unwrap(), file.to_str().unwrap());
    let given = [
        "import",
        "--mapping",
        m,
        "--delimiter",
        ";",
        "--encoding",
        "gbk",
        f,
    ];
    let again = ok(dealtrail(&data, &given));
    assert!(
        stderr(&again).contains("0 new events, 10 already in the log"),
        "{}",
        stderr(&again)
    );
    // A wrong separator leaves one column where the mapping wants nine.
    let comma = ["import", "--mapping", m, "--delimiter", ",", f];
    let out = dealtrail(&data, &comma);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("line 1: the mapping needs the columns"),
        "{}",
        stderr(&out)
    );

    // A stage the mapping does not know refuses its row, by line and column.
    let bad = CHINESE_EXPORT.replace("方案报价;2024/3/1", "需求确认;2024/3/1");
    std::fs::write(&file, encoding_rs::GBK.encode(&bad).0).unwrap();
    let out = dealtrail(
        &data,
        &[
            "import",
            "--mapping",
            mapping.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out)
            .contains("line 2, column 6 (阶段): \"需求确认\" is not in the mapping's [stages]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_csv_file_given_to_the_ndjson_import_says_how_to_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dealtrail(
        &dir.path().join("data"),
        &["import", &fixture("hubspot/hubspot-deals.csv")],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("--profile salesforce|hubspot|maven"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_maven_set_imports_and_a_second_import_adds_nothing() {
    let maven = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/maven-crm");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["import", "--profile", "maven", maven.to_str().unwrap()];
    let out = ok(dealtrail(&data, &args));
    assert!(
        stderr(&out).contains("500 skipped: prospects without an engage_date"),
        "{}",
        stderr(&out)
    );
    let events = log(&data);
    // Counted in the CSV with Python's csv module: 35 agents, 85 accounts (+ `unknown` for the rows
    // without one), 8,800 rows of which 500 have no engage date; 4,238 won, 2,473 lost and
    // 1,589 engaging.
    assert_eq!(
        count_by_type(&events),
        counts(&[
            ("RepJoined", 35),
            ("CustomerRegistered", 86),
            ("DealOpened", 8300),
            ("DealStageChanged", 1589),
            ("DealWon", 4238),
            ("DealLost", 2473),
        ])
    );
    let again = ok(dealtrail(&data, &args));
    assert!(
        stderr(&again).contains(" 0 new events"),
        "{}",
        stderr(&again)
    );
}
