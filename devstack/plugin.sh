#!/usr/bin/env bash
# devstack plugin: builds the Rust ironic-inspector from this repository, configures it against
# the devstack's Keystone, Ironic and database, and runs it with a dnsmasq for the ramdisk.
# Not exercised by this repository's CI (there is no devstack here); kept in step with
# example.conf and README by hand.

function inspector_iniset {
    iniset "$IRONIC_INSPECTOR_CONF_FILE" "$1" "$2" "$3"
}

function install_inspector {
    if ! command -v cargo >/dev/null; then
        install_package cargo
    fi
    (cd "$IRONIC_INSPECTOR_DIR" && cargo build --release --locked)
    sudo install -m 0755 "$IRONIC_INSPECTOR_DIR/target/release/ironic-inspector" \
        "$IRONIC_INSPECTOR_DIR/target/release/ironic-inspector-dbsync" "$IRONIC_INSPECTOR_BIN_DIR/"
    # The firewall runs iptables through oslo.rootwrap, under the name upstream used.
    pip_install oslo.rootwrap
    sudo ln -sf "$(command -v oslo-rootwrap)" "$IRONIC_INSPECTOR_BIN_DIR/ironic-inspector-rootwrap"
}

function install_inspector_dhcp {
    install_package dnsmasq
}

function configure_inspector {
    sudo install -d -o "$STACK_USER" "$IRONIC_INSPECTOR_CONF_DIR"
    create_service_user "$IRONIC_INSPECTOR_ADMIN_USER" "admin"

    # Start from the documented defaults, then turn the trial settings into devstack ones.
    cp "$IRONIC_INSPECTOR_DIR/example.conf" "$IRONIC_INSPECTOR_CONF_FILE"
    inspector_iniset DEFAULT debug "$IRONIC_INSPECTOR_DEBUG"
    inspector_iniset DEFAULT auth_strategy keystone
    inspector_iniset DEFAULT listen_address 0.0.0.0
    inspector_iniset DEFAULT listen_port "$IRONIC_INSPECTOR_PORT"
    inspector_iniset DEFAULT rootwrap_config "$IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE"
    inspector_iniset ironic auth_strategy keystone
    inspector_iniset ironic os_auth_url "$KEYSTONE_SERVICE_URI/v3"
    inspector_iniset ironic os_username "$IRONIC_INSPECTOR_ADMIN_USER"
    inspector_iniset ironic os_password "$SERVICE_PASSWORD"
    inspector_iniset ironic os_tenant_name "$SERVICE_PROJECT_NAME"
    inspector_iniset keystone_authtoken identity_uri "$KEYSTONE_SERVICE_URI"
    inspector_iniset firewall manage_firewall "$IRONIC_INSPECTOR_MANAGE_FIREWALL"
    inspector_iniset firewall dnsmasq_interface "$IRONIC_INSPECTOR_INTERFACE"
    inspector_iniset database connection "$(database_connection_url ironic_inspector)"
    chmod 0640 "$IRONIC_INSPECTOR_CONF_FILE"

    sudo cp "$IRONIC_INSPECTOR_DIR/rootwrap.conf" "$IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE"
    sudo cp -r "$IRONIC_INSPECTOR_DIR/rootwrap.d" "$IRONIC_INSPECTOR_CONF_DIR/"
    local sudoers="$STACK_USER ALL=(root) NOPASSWD: $IRONIC_INSPECTOR_BIN_DIR/ironic-inspector-rootwrap $IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE *"
    echo "$sudoers" | sudo tee /etc/sudoers.d/ironic-inspector-rootwrap >/dev/null
    sudo chmod 0440 /etc/sudoers.d/ironic-inspector-rootwrap

    # Let Ironic hand inspection to us.
    iniset "$IRONIC_CONF_FILE" inspector endpoint_override "$IRONIC_INSPECTOR_URI"
}

function configure_inspector_dhcp {
    cat <<EOT | sudo tee "$IRONIC_INSPECTOR_DHCP_CONF_FILE" >/dev/null
no-daemon
port=0
interface=$IRONIC_INSPECTOR_INTERFACE
bind-interfaces
dhcp-range=$IRONIC_INSPECTOR_DHCP_RANGE
dhcp-boot=pxelinux.0
dhcp-sequential-ip
EOT
}

function prepare_inspector_network {
    sudo ip link show "$IRONIC_INSPECTOR_INTERFACE" >/dev/null 2>&1 ||
        sudo ip link add "$IRONIC_INSPECTOR_INTERFACE" type bridge
    sudo ip addr replace "$IRONIC_INSPECTOR_INTERNAL_IP/$IRONIC_INSPECTOR_INTERNAL_SUBNET_SIZE" \
        dev "$IRONIC_INSPECTOR_INTERFACE"
    sudo ip link set "$IRONIC_INSPECTOR_INTERFACE" up
}

function init_inspector {
    recreate_database ironic_inspector
    "$IRONIC_INSPECTOR_BIN_DIR/ironic-inspector-dbsync" --config-file "$IRONIC_INSPECTOR_CONF_FILE" upgrade
}

function start_inspector {
    run_process ironic-inspector \
        "$IRONIC_INSPECTOR_BIN_DIR/ironic-inspector --config-file $IRONIC_INSPECTOR_CONF_FILE"
    echo "Waiting for ironic-inspector at $IRONIC_INSPECTOR_URI"
    if ! wait_for_service "$SERVICE_TIMEOUT" "$IRONIC_INSPECTOR_URI"; then
        die $LINENO "ironic-inspector did not start"
    fi
}

function start_inspector_dhcp {
    run_process ironic-inspector-dhcp "sudo dnsmasq --conf-file=$IRONIC_INSPECTOR_DHCP_CONF_FILE"
}

function stop_inspector {
    stop_process ironic-inspector
}

function stop_inspector_dhcp {
    stop_process ironic-inspector-dhcp
}

function cleanup_inspector {
    sudo rm -rf "$IRONIC_INSPECTOR_CONF_DIR" /etc/sudoers.d/ironic-inspector-rootwrap
    sudo rm -f "$IRONIC_INSPECTOR_BIN_DIR"/ironic-inspector{,-dbsync,-rootwrap}
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing ironic-inspector"
    install_inspector
    is_service_enabled ironic-inspector-dhcp && install_inspector_dhcp
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    echo_summary "Configuring ironic-inspector"
    configure_inspector
    if is_service_enabled ironic-inspector-dhcp; then
        prepare_inspector_network
        configure_inspector_dhcp
    fi
elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
    echo_summary "Starting ironic-inspector"
    init_inspector
    start_inspector
    is_service_enabled ironic-inspector-dhcp && start_inspector_dhcp
fi

if [[ "$1" == "unstack" ]]; then
    stop_inspector
    is_service_enabled ironic-inspector-dhcp && stop_inspector_dhcp
fi

if [[ "$1" == "clean" ]]; then
    cleanup_inspector
fi
