//! Where processed introspection data is kept, as `[processing] store_data` says: nowhere,
//! in Swift (object `inspector_data-<uuid>`), or in the database (the node's
//! `introspection_data` option row). Processing writes it with [`store`]; the API's
//! `GET /v1/introspection/<uuid>/data` reads it with [`load`]. Nothing else decides where
//! the data lives.
//!
//! Ports the Swift storage of upstream's `ironic_inspector/process.py` (`_process_node`) and
//! the data endpoint of `main.py`; the `database` choice is ours (see `example.conf`).

use serde_json::{Value, json};

use crate::config::StoreData;
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::state::AppState;
use crate::swift::SwiftClient;

/// Prefix of the Swift objects that hold processed data (`inspector_data-<uuid>`).
pub const DATA_OBJECT_PREFIX: &str = "inspector_data";

/// The Swift object name of a node's processed data.
fn object_name(uuid: &str) -> String {
    crate::swift::object_name(DATA_OBJECT_PREFIX, uuid)
}

/// The Swift client `store_data = swift` needs (start-up creates it for that setting).
fn swift(state: &AppState) -> Result<&SwiftClient> {
    state
        .swift
        .as_ref()
        .ok_or_else(|| Error::internal("SwiftMissing", "store_data = swift without a Swift client"))
}

/// Keeps the processed data of `node` where `[processing] store_data` says (and, with
/// Swift and `store_data_location`, records the object's name in the node's `extra`).
///
/// # Errors
/// Swift, Ironic or the database failing; each error names its service.
pub async fn store(
    state: &AppState,
    node: &mut IronicNode,
    data: &IntrospectionData,
) -> Result<()> {
    match state.config.processing.store_data {
        StoreData::None => {
            tracing::debug!("introspection data is not stored ([processing] store_data = none)");
            Ok(())
        }
        StoreData::Swift => {
            let swift = swift(state)?;
            let name = object_name(&node.uuid);
            let body = serde_json::to_vec(data.as_map())
                .map_err(|e| Error::internal("DataEncoding", e))?;
            swift.store_object(&name, body).await?;
            tracing::info!(object = %name, "introspection data stored in Swift");
            if let Some(location) = &state.config.processing.store_data_location {
                node.patch(&[
                    json!({"op": "add", "path": format!("/extra/{location}"), "value": name}),
                ])
                .await?;
            }
            Ok(())
        }
        StoreData::Database => {
            // The ramdisk's logs go to ramdisk_logs_dir (ramdisk_error hook), not into the
            // database: they are the bulk of a report and MySQL's TEXT column holds 64 KiB.
            let mut stored = data.as_map().clone();
            stored.remove("logs");
            state
                .node_cache
                .store_data(&node.uuid, &Value::Object(stored))
                .await?;
            tracing::info!("introspection data stored in the database");
            Ok(())
        }
    }
}

/// The stored data of node `uuid`, as the JSON bytes the API answers with.
///
/// # Errors
/// 404 when data is not stored (`store_data = none`) or none is stored for the node; Swift or
/// the database failing.
pub async fn load(state: &AppState, uuid: &str) -> Result<Vec<u8>> {
    match state.config.processing.store_data {
        StoreData::None => Err(Error::NotFound(
            "Inspector is not configured to store data. Set the [processing] store_data \
                 configuration option to change this."
                .to_string(),
        )),
        StoreData::Swift => {
            let name = object_name(uuid);
            let swift = swift(state)?;
            Ok(swift.get_object(&name).await?)
        }
        StoreData::Database => match state.node_cache.stored_data(uuid).await? {
            Some(data) => serde_json::to_vec(&data).map_err(|e| Error::internal("DataEncoding", e)),
            None => Err(Error::NotFound(format!(
                "No introspection data is stored for node {uuid}"
            ))),
        },
    }
}
