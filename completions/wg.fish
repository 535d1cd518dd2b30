# fish completion for wg(8): subcommands (with our extensions events, allowed-ips, exporter),
# interface names, show fields, `wg set` options, extension options.

set -l __wg_cmds show showconf set setconf addconf syncconf genkey genpsk pubkey events allowed-ips exporter

function __wg_ifaces
    wg show interfaces 2>/dev/null | string split ' '
end

function __wg_arg_count
    count (commandline -opc)
end

function __wg_set_in_peer
    contains -- peer (commandline -opc)[4..-1]
end

complete -c wg -f
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a show -d 'Shows the current configuration and device information'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a showconf -d 'Shows the current configuration of an interface'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a set -d 'Change the current configuration, add, remove or change peers'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a setconf -d 'Applies a configuration file to a WireGuard interface'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a addconf -d 'Appends a configuration file to a WireGuard interface'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a syncconf -d 'Synchronizes a configuration file to a WireGuard interface'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a genkey -d 'Generates a new private key'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a genpsk -d 'Generates a new preshared key'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a pubkey -d 'Reads a private key from stdin, writes its public key'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a events -d 'Prints events of interfaces as they happen'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a allowed-ips -d 'Fewest prefixes covering addresses minus others'
complete -c wg -n "not __fish_seen_subcommand_from $__wg_cmds" -a exporter -d 'Serves Prometheus metrics over HTTP'

complete -c wg -n "__fish_seen_subcommand_from show; and test (__wg_arg_count) -eq 2" -a "all interfaces (__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from show; and test (__wg_arg_count) -eq 3; and not __fish_seen_subcommand_from interfaces" -a "public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips latest-handshakes transfer persistent-keepalive dump"
complete -c wg -n "__fish_seen_subcommand_from showconf set events; and test (__wg_arg_count) -eq 2" -a "(__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from setconf addconf syncconf; and test (__wg_arg_count) -eq 2" -a "(__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from setconf addconf syncconf; and test (__wg_arg_count) -eq 3" -F
complete -c wg -n "__fish_seen_subcommand_from set; and test (__wg_arg_count) -ge 3; and not __wg_set_in_peer" -a "listen-port fwmark private-key peer"
complete -c wg -n "__fish_seen_subcommand_from set; and test (__wg_arg_count) -ge 3; and __wg_set_in_peer" -a "peer remove preshared-key endpoint persistent-keepalive allowed-ips"
complete -c wg -n "__fish_seen_subcommand_from set; and __fish_prev_arg_in private-key preshared-key" -F
complete -c wg -n "__fish_seen_subcommand_from allowed-ips" -l except -r -d 'Addresses to leave out'
complete -c wg -n "__fish_seen_subcommand_from exporter" -l listen -r -d 'ADDR:PORT to serve on'
complete -c wg -n "__fish_seen_subcommand_from exporter" -l friendly-names -r -F -d 'Config file with friendly_name lines'
complete -c wg -n "__fish_seen_subcommand_from exporter" -a "(__wg_ifaces)"
