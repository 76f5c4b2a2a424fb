//! The PXE/DHCP firewall: which MACs may reach our DHCP server.
//!
//! Ports the interface of upstream `firewall.py`. The firewall is told which MACs to block
//! and never asks Ironic or the database itself; the workflows compute that list (every MAC
//! Ironic has a port for, less the MACs of nodes under introspection).
//!
//! This build has one backend, [`Disabled`], used when `[firewall] manage_firewall = false`
//! and, until the iptables backend lands, also when it is true (start-up says so).

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::error::Result;

/// A way of enforcing the DHCP filter.
#[async_trait]
pub trait Firewall: Send + Sync + std::fmt::Debug {
    /// Whether updates do anything; when false the workflows skip computing the MAC list
    /// (and so make no Ironic call for it), as upstream did with `manage_firewall = false`.
    fn is_enabled(&self) -> bool;

    /// Blocks exactly `blocked_macs` (lower case) and lets every other MAC through.
    async fn update(&self, blocked_macs: &BTreeSet<String>) -> Result<()>;
}

/// No filtering at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disabled;

#[async_trait]
impl Firewall for Disabled {
    fn is_enabled(&self) -> bool {
        false
    }

    async fn update(&self, _blocked_macs: &BTreeSet<String>) -> Result<()> {
        Ok(())
    }
}
