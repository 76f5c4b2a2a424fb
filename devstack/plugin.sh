#!/usr/bin/env bash
# devstack plugin: builds the Rust ironic-inspector from this repository, configures it against
# the devstack's Keystone, Ironic and database, points Ironic's inspection at it, and runs it
# with a dnsmasq for the ramdisk. The firewall runs through sudo and our own
# ironic-inspector-rootwrap (devstack runs services as $STACK_USER, not as a systemd unit with
# capabilities). CI checks this file with `bash -n` and shellcheck; there is no devstack here
# to run it, so its steps follow README's install section and the packaged unit by hand.
#
# devstack sources this file: the helpers it uses (iniset, install_package, pip_install,
# run_process, ...) and the settings file's variables come from there.
# shellcheck disable=SC2154

function inspector_iniset {
    iniset "$IRONIC_INSPECTOR_CONF_FILE" "$1" "$2" "$3"
}

function install_inspector {
    if ! command -v cargo >/dev/null; then
        install_package cargo
    fi
    (cd "$IRONIC_INSPECTOR_DIR" && cargo build --release --locked)
    local bin
    for bin in ironic-inspector ironic-inspector-dbsync ironic-inspector-rootwrap; do
        sudo install -m 0755 "$IRONIC_INSPECTOR_DIR/target/release/$bin" "$IRONIC_INSPECTOR_BIN_DIR/"
    done
}

# The command-line client (`openstack baremetal introspection ...`), as upstream's plugin did.
function install_inspector_client {
    if use_library_from_git python-ironic-inspector-client; then
        git_clone_by_name python-ironic-inspector-client
        setup_dev_lib python-ironic-inspector-client
    else
        pip_install python-ironic-inspector-client
    fi
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
    inspector_iniset firewall root_helper \
        "sudo $IRONIC_INSPECTOR_BIN_DIR/ironic-inspector-rootwrap $IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE"
    inspector_iniset database connection "$(database_connection_url ironic_inspector)"
    chmod 0640 "$IRONIC_INSPECTOR_CONF_FILE"

    # The root helper refuses configuration and filter files that anyone but root can write.
    sudo install -o root -g root -m 0644 "$IRONIC_INSPECTOR_DIR/rootwrap.conf" \
        "$IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE"
    sudo install -d -o root -g root -m 0755 "$IRONIC_INSPECTOR_CONF_DIR/rootwrap.d"
    sudo install -o root -g root -m 0644 "$IRONIC_INSPECTOR_DIR"/rootwrap.d/*.filters \
        "$IRONIC_INSPECTOR_CONF_DIR/rootwrap.d/"
    local sudoers="$STACK_USER ALL=(root) NOPASSWD: $IRONIC_INSPECTOR_BIN_DIR/ironic-inspector-rootwrap $IRONIC_INSPECTOR_ROOTWRAP_CONF_FILE *"
    echo "$sudoers" | sudo tee /etc/sudoers.d/ironic-inspector-rootwrap >/dev/null
    sudo chmod 0440 /etc/sudoers.d/ironic-inspector-rootwrap

    configure_ironic_for_inspector
}

# Let Ironic hand inspection to us: the current `inspector` inspect interface finds us through
# endpoint_override; Liberty-era Ironic read [inspector] enabled and service_url. Options an
# Ironic release does not know are ignored by it, so both sets are written.
function configure_ironic_for_inspector {
    iniset "$IRONIC_CONF_FILE" inspector endpoint_override "$IRONIC_INSPECTOR_URI"
    iniset "$IRONIC_CONF_FILE" inspector enabled True
    iniset "$IRONIC_CONF_FILE" inspector service_url "$IRONIC_INSPECTOR_URI"
    local enabled
    enabled=$(iniget "$IRONIC_CONF_FILE" DEFAULT enabled_inspect_interfaces)
    if [[ -n "$enabled" && ",$enabled," != *",inspector,"* ]]; then
        iniset "$IRONIC_CONF_FILE" DEFAULT enabled_inspect_interfaces "$enabled,inspector"
    elif [[ -z "$enabled" ]]; then
        iniset "$IRONIC_CONF_FILE" DEFAULT enabled_inspect_interfaces "inspector,no-inspect"
    fi
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

# The host firewall rules the ramdisk needs on the inspection network, as upstream's plugin
# added them: TFTP for the PXE boot and the API port for the ramdisk's report. DHCP (67) is
# the daemon's own chain, which it creates and hooks into INPUT itself.
function inspector_host_rules {
    local action=$1
    sudo iptables "$action" INPUT -i "$IRONIC_INSPECTOR_INTERFACE" -p udp --dport 69 -j ACCEPT
    sudo iptables "$action" INPUT -i "$IRONIC_INSPECTOR_INTERFACE" -p tcp \
        --dport "$IRONIC_INSPECTOR_PORT" -j ACCEPT
}

function open_inspector_ports {
    # Idempotent: a second `stack` does not stack up duplicate rules.
    inspector_host_rules -D 2>/dev/null || true
    inspector_host_rules -I
}

function close_inspector_ports {
    inspector_host_rules -D 2>/dev/null || true
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
    close_inspector_ports
    sudo rm -rf "$IRONIC_INSPECTOR_CONF_DIR" /etc/sudoers.d/ironic-inspector-rootwrap
    sudo rm -f "$IRONIC_INSPECTOR_BIN_DIR"/ironic-inspector{,-dbsync,-rootwrap}
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing ironic-inspector"
    install_inspector
    install_inspector_client
    if is_service_enabled ironic-inspector-dhcp; then
        install_inspector_dhcp
    fi
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
    open_inspector_ports
    start_inspector
    if is_service_enabled ironic-inspector-dhcp; then
        start_inspector_dhcp
    fi
fi

if [[ "$1" == "unstack" ]]; then
    stop_inspector
    if is_service_enabled ironic-inspector-dhcp; then
        stop_inspector_dhcp
    fi
fi

if [[ "$1" == "clean" ]]; then
    cleanup_inspector
fi
