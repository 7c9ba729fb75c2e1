//! A report that takes long (here: one that waits for the read model while a batch holds
//! it) must not stall the service: `/healthz` and appends answer meanwhile. The runtime has
//! two workers, as on a two-core machine; four reports waiting on async workers would hold
//! both of them.

use std::sync::Arc;

use crate::helpers::{rules_store, send, test_config, ADMIN, WAIT};
use api::http::{serve, AppState};
use axum::http::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_waiting_for_the_model_do_not_stall_healthz_or_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(rules_store());
    let (state, _) = AppState::open(store, dir.path(), test_config(), Some(ADMIN)).unwrap();
    let projector = state.projector.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));

    // A batch (or a report) that does not end until the test says so.
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _model = projector.write();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.await.unwrap();

    let reports: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                send(
                    addr,
                    Method::GET,
                    "/v1/reports/funnel",
                    Some(ADMIN),
                    None,
                    &[],
                )
                .await
                .status()
            })
        })
        .collect();
    // Let the four reach the server and wait for the model.
    std::thread::sleep(std::time::Duration::from_millis(300)); // not a tokio timer: see below

    // Asked from a plain thread with a socket timeout: if the runtime's workers were stuck,
    // no tokio timer would fire to fail the test.
    let health = http_from_thread(addr, "GET /healthz HTTP/1.1\r\n\r\n".to_string());
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "/healthz while four reports wait: {health}"
    );
    let event = r#"{"events":[{"type":"LeadCaptured","data":{"channel":"web","name":"n"}}]}"#;
    let append = http_from_thread(
        addr,
        format!(
            "POST /v1/streams/lead-L1/events HTTP/1.1\r\nauthorization: Bearer {ADMIN}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{event}",
            event.len()
        ),
    );
    assert!(
        append.starts_with("HTTP/1.1 201"),
        "an append while four reports wait: {append}"
    );
    assert!(
        reports.iter().all(|r| !r.is_finished()),
        "the reports were still waiting for the model"
    );

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    for r in reports {
        let status = tokio::time::timeout(WAIT, r)
            .await
            .expect("the reports finish")
            .unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    let _ = stop.send(());
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Sends `request` (without its host and connection headers) over a new connection from a
/// std thread and returns the start of the answer, or why there was none within [`WAIT`].
fn http_from_thread(addr: std::net::SocketAddr, request: String) -> String {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let (start, rest) = request.split_once("\r\n").unwrap();
        let request = format!("{start}\r\nhost: {addr}\r\nconnection: close\r\n{rest}");
        conn.write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = [0u8; 64];
        let n = conn
            .read(&mut answer)
            .map_err(|e| format!("no answer within {WAIT:?}: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&answer[..n]).into_owned())
    })
    .join()
    .unwrap()
    .unwrap_or_else(|e| e)
}
