//! `example`: a processing hook and a node-not-found hook that only log.
//!
//! Ports `ironic_inspector/plugins/example.py`. Upstream logged the whole payload; this
//! port logs its keys only (the payload may carry logs and credentials).

use async_trait::async_trait;

use super::{NodeNotFoundHook, ProcessingHook};
use crate::data::IntrospectionData;
use crate::error::Result;
use crate::ironic_node::IronicNode;

/// The `example` processing hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct Example;

#[async_trait]
impl ProcessingHook for Example {
    fn name(&self) -> &'static str {
        "example"
    }

    async fn before_processing(&self, data: &mut IntrospectionData) -> Result<()> {
        tracing::debug!(data = ?data, "before_processing");
        Ok(())
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        tracing::debug!(data = ?data, node.uuid = %node.uuid, "before_update");
        Ok(())
    }
}

/// The `example` node-not-found hook: logs and finds nothing, so processing fails with
/// `Node not found hook returned nothing`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExampleNotFound;

#[async_trait]
impl NodeNotFoundHook for ExampleNotFound {
    fn name(&self) -> &'static str {
        "example"
    }

    async fn run(&self, data: &mut IntrospectionData) -> Result<Option<String>> {
        tracing::debug!(data = ?data, "Processing node not found");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    #[tokio::test]
    async fn example_hooks_change_nothing() {
        let mut data = IntrospectionData::from_map_unchecked(Map::new());
        Example.before_processing(&mut data).await.unwrap();
        assert!(data.as_map().is_empty());
        assert_eq!(ExampleNotFound.run(&mut data).await.unwrap(), None);
    }
}
