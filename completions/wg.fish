# fish completion for wg(8): subcommands, interface names, show fields, `wg set` options.

set -l __wg_cmds show showconf set setconf addconf syncconf genkey genpsk pubkey

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

complete -c wg -n "__fish_seen_subcommand_from show; and test (__wg_arg_count) -eq 2" -a "all interfaces (__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from show; and test (__wg_arg_count) -eq 3; and not __fish_seen_subcommand_from interfaces" -a "public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips latest-handshakes transfer persistent-keepalive dump"
complete -c wg -n "__fish_seen_subcommand_from showconf set; and test (__wg_arg_count) -eq 2" -a "(__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from setconf addconf syncconf; and test (__wg_arg_count) -eq 2" -a "(__wg_ifaces)"
complete -c wg -n "__fish_seen_subcommand_from setconf addconf syncconf; and test (__wg_arg_count) -eq 3" -F
complete -c wg -n "__fish_seen_subcommand_from set; and test (__wg_arg_count) -ge 3; and not __wg_set_in_peer" -a "listen-port fwmark private-key peer"
complete -c wg -n "__fish_seen_subcommand_from set; and test (__wg_arg_count) -ge 3; and __wg_set_in_peer" -a "peer remove preshared-key endpoint persistent-keepalive allowed-ips"
complete -c wg -n "__fish_seen_subcommand_from set; and __fish_prev_arg_in private-key preshared-key" -F
