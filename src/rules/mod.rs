//! Introspection rules: where processing applies them.
//!
//! Ports the call site of upstream `rules.apply` in `process.py`. The rules engine and the
//! `/v1/rules` API (API 1.2) are ported separately; until they land, no rule can be stored,
//! so there is none to apply and this returns at once.

use crate::data::IntrospectionData;
use crate::db::Db;
use crate::error::Result;
use crate::node_info::NodeInfo;

/// Applies every stored rule to the node's processed data (none exist yet). When rules
/// exist, the node is re-read from Ironic first (2.2 dropped its cached node here), so the
/// rules see what the hooks patched; with none, no request is made.
pub async fn apply(_db: &Db, node: &mut NodeInfo, _data: &IntrospectionData) -> Result<()> {
    tracing::debug!(node.uuid = %node.uuid, "no introspection rules to apply");
    Ok(())
}
