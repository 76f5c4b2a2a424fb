//! SQLite under concurrent requests: readers over HTTP and writers through the node cache at
//! the same time must never see "database is locked" (a 500 or 503 here).

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_and_writes_never_fail() {
    let app = spawn_app().await;
    let uuids: Vec<String> = (0..40)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();

    let mut writers = Vec::new();
    for (i, uuid) in uuids.iter().enumerate() {
        let cache = app.state.node_cache.clone();
        let uuid = uuid.clone();
        writers.push(tokio::spawn(async move {
            cache
                .add_node(&uuid, Some(&format!("10.1.0.{i}")))
                .await
                .unwrap();
            cache
                .add_attribute(&uuid, "mac", &[format!("52:54:00:00:00:{i:02x}")])
                .await
                .unwrap();
            cache
                .set_option(&uuid, "new_ipmi_credentials", &json!(null))
                .await
                .unwrap();
            if i % 2 == 0 {
                cache.finished(&uuid, Some("done")).await.unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for round in 0..400 {
        let client = app.client.clone();
        let url = format!(
            "{}/v1/introspection/{}",
            app.address,
            uuids[round % uuids.len()]
        );
        readers.push(tokio::spawn(async move {
            client.get(url).send().await.unwrap().status().as_u16()
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for reader in readers {
        *statuses.entry(reader.await.unwrap()).or_default() += 1;
    }
    // Each read sees the node either before it was added (404) or after (200), nothing else.
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 404),
        "unexpected statuses: {statuses:?}"
    );
    for (i, uuid) in uuids.iter().enumerate() {
        let body: serde_json::Value = app
            .get(&format!("/v1/introspection/{uuid}"), &[])
            .await
            .json()
            .await
            .unwrap();
        let expected = if i % 2 == 0 {
            json!({"finished": true, "error": "done"})
        } else {
            json!({"finished": false, "error": null})
        };
        assert_eq!(body, expected, "{uuid}");
    }
    assert_eq!(app.state.node_cache.active_macs().await.unwrap().len(), 20);
    app.stop().await;
}
