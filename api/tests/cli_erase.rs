//! Personal data at rest and its erasure with the real binary on a sled data directory
//! (SPEC §7): no file of the directory holds a person's name in the log; after `dealtrail
//! erase` (and every later command, each a restart) no file holds the name or the key; the
//! figures, `verify` and a rebuild are unaffected; re-importing an export taken before adds
//! nothing back. A store written before encryption refuses to erase (409-like exit 5).

use std::path::Path;
use std::sync::Arc;

use eventlog::{EnvelopeOnly, EventStore, ExpectedVersion, ProposedEvent, SledStore};
use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok};

const ZHUGE: &str = "Zhuge Liang Kongming";
const SIMA: &str = "Sima Yi Zhongda";

fn line(n: u32, stream: &str, ty: &str, data: Value) -> String {
    let mut l = json!({
        "id": format!("00000000-0000-7000-8000-{n:012}"),
        "stream": stream,
        "type": ty,
        "occurred_at": format!("2026-04-{:02}T09:00:00Z", n.min(28)),
        "actor": "wukong",
        "data": data,
    })
    .to_string();
    l.push('\n');
    l
}

/// Two customers of wukong's (C-1 with a call and a won deal with a note on him), a lead.
fn log() -> String {
    [
        line(1, "org-acme", "RepJoined", json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"})),
        line(2, "customer-C-1", "CustomerRegistered", json!({"name": ZHUGE, "owner": "wukong", "region": "west"})),
        line(3, "customer-C-1", "ActivityLogged", json!({"kind": "call", "rep": "wukong", "summary": format!("{ZHUGE} wants a demo")})),
        line(4, "customer-C-2", "CustomerRegistered", json!({"name": SIMA, "owner": "wukong"})),
        line(5, "deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "wukong", "title": "ERP", "amount": 1000, "stage": "qualified"})),
        line(6, "deal-D-1", "CompetitorNoted", json!({"competitor": "Wei Soft", "note": format!("{ZHUGE} also talks to Wei")})),
        line(7, "deal-D-1", "DealWon", json!({"amount": 900})),
        line(8, "deal-D-2", "DealOpened", json!({"customer_id": "C-2", "owner": "wukong", "title": "CRM", "amount": 500, "stage": "qualified"})),
        line(9, "lead-L-1", "LeadCaptured", json!({"channel": "web", "name": "Diaochan", "company": "Lu Bu Trading"})),
    ]
    .concat()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(name, _)| name)
        .collect()
}

/// The key of `person` in the key file (format: `eventlog::personal::KeyFile`).
fn key_of(data: &Path, person: &str) -> [u8; 32] {
    let bytes = std::fs::read(data.join("personal-keys")).unwrap();
    for slot in bytes.chunks(128).skip(1) {
        let len = slot[1] as usize;
        if slot[0] == 1 && &slot[2..2 + len] == person.as_bytes() {
            return slot[82..114].try_into().unwrap();
        }
    }
    panic!("no key for {person}");
}

fn exported(data: &Path) -> Vec<Value> {
    ok(dealtrail(data, &["export"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn names_are_sealed_at_rest_and_an_erasure_leaves_no_byte_of_them_or_their_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("log.ndjson");
    std::fs::write(&file, log()).unwrap();
    ok(dealtrail(&data, &["import", file.to_str().unwrap()]));
    // The read model's snapshot, which holds names as text, is written too.
    ok(dealtrail(&data, &["rebuild"]));

    // At rest: the log's files hold no name; the snapshot does (it is the model).
    let snapshot = data.join("projections").join("readmodel.json");
    for name in [ZHUGE, SIMA, "Diaochan", "Lu Bu"] {
        assert_eq!(
            holding(&data, name.as_bytes()),
            vec![snapshot.display().to_string()],
            "{name}"
        );
    }
    let key = key_of(&data, "customer-C-1");
    assert_eq!(
        holding(&data, &key),
        vec![data.join("personal-keys").display().to_string()]
    );
    // Reads give the text back.
    let before = exported(&data);
    assert_eq!(before[1]["data"]["name"], ZHUGE);
    let export_file = tmp.path().join("before.ndjson");
    std::fs::write(&export_file, ok(dealtrail(&data, &["export"]))).unwrap();
    let funnel = ok(dealtrail(&data, &["report", "funnel", "--json"]));
    let reps = ok(dealtrail(
        &data,
        &["report", "reps", "--json", "--end", "2026-04"],
    ));

    let out = ok(dealtrail(
        &data,
        &[
            "erase",
            "customer",
            "C-1",
            "--reason",
            "GDPR art. 17",
            "--actor",
            "dpo",
        ],
    ));
    let done: Value = serde_json::from_str(&out).unwrap();
    // CustomerRegistered.name, ActivityLogged.summary, CompetitorNoted.note.
    assert_eq!(done["events"], 3, "{done}");
    assert_eq!(done["fields"], json!(["name", "note", "summary"]));

    // No file of the directory holds the name or the key any more; the others stay.
    for gone in [ZHUGE.as_bytes(), "Zhuge".as_bytes(), &key[..]] {
        assert_eq!(holding(&data, gone), Vec::<String>::new());
    }
    assert!(!holding(&data, SIMA.as_bytes()).is_empty());
    ok(dealtrail(&data, &["verify"]));
    // Every read of a new process (a restart): erased; figures unchanged.
    let after = exported(&data);
    assert_eq!(
        after.len(),
        before.len() + 2,
        "PersonalDataErased and its audit"
    );
    assert_eq!(
        after[1]["data"],
        json!({"name": "[erased]", "owner": "wukong", "region": "west"})
    );
    assert_eq!(after[2]["data"]["summary"], "[erased]");
    assert_eq!(
        after[5]["data"],
        json!({"competitor": "Wei Soft", "note": "[erased]"})
    );
    assert_eq!(after[3]["data"]["name"], SIMA);
    assert_eq!(after[8]["data"]["name"], "Diaochan");
    assert_eq!(
        ok(dealtrail(&data, &["report", "funnel", "--json"])),
        funnel
    );
    assert_eq!(
        ok(dealtrail(
            &data,
            &["report", "reps", "--json", "--end", "2026-04"]
        )),
        reps
    );
    let csv = ok(dealtrail(&data, &["export", "--format", "csv"]));
    assert!(!csv.contains("Zhuge") && csv.contains("[erased]"), "{csv}");
    // Rebuilt from scratch: the same.
    ok(dealtrail(&data, &["rebuild"]));
    assert!(holding(&data, b"Zhuge").is_empty());
    assert_eq!(
        ok(dealtrail(&data, &["report", "funnel", "--json"])),
        funnel
    );

    // The export taken before still holds the text (the operator's to keep or destroy);
    // importing it again adds nothing back.
    let again = dealtrail(&data, &["import", export_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && err.contains("0 new events"),
        "{err}"
    );
    assert_eq!(exported(&data), after);
    assert!(holding(&data, b"Zhuge").is_empty());

    // Twice, or someone unknown: refused (exit 5), nothing written.
    for (who, says) in [("C-1", "already erased"), ("C-9", "does not exist")] {
        let o = dealtrail(&data, &["erase", "customer", who, "--reason", "x"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(5), "{err}");
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(exported(&data).len(), after.len());
}

fn event(ty: &str, data: Value) -> ProposedEvent {
    serde_json::from_value(
        json!({"type": ty, "occurred_at": "2026-03-01T09:00:00Z", "actor": "wukong", "data": data}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_person_written_before_encryption_reads_as_written_and_is_not_erased() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        // Written as an older dealtrail did: the store without the sealing in front.
        let store = SledStore::open(&data, Arc::new(EnvelopeOnly)).unwrap();
        store
            .append(
                "customer-C-1",
                ExpectedVersion::Any,
                vec![event("CustomerRegistered", json!({"name": ZHUGE}))],
            )
            .await
            .unwrap();
    }
    let before = exported(&data);
    assert_eq!(before[0]["data"]["name"], ZHUGE);
    let o = dealtrail(&data, &["erase", "customer", "C-1", "--reason", "asked"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("written before the log encrypted it"), "{err}");
    assert_eq!(exported(&data), before, "nothing changed");
    ok(dealtrail(&data, &["verify"]));
}
