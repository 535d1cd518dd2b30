#compdef wg
# zsh completion for wg(8): subcommands (with our extensions events, allowed-ips, exporter),
# interface names, show fields, `wg set` options, extension options.

_wg_ifaces() {
	local -a ifaces
	ifaces=(${(s: :)"$(wg show interfaces 2>/dev/null)"})
	compadd -a ifaces
}

_wg_set() {
	local -a dev_opts peer_opts
	dev_opts=(listen-port fwmark private-key peer)
	peer_opts=(peer remove preshared-key endpoint persistent-keepalive allowed-ips)
	case ${words[CURRENT-1]} in
	private-key|preshared-key) _files; return ;;
	listen-port|fwmark|endpoint|persistent-keepalive|allowed-ips) _message value; return ;;
	peer)
		local -a peers
		peers=(${(f)"$(wg show ${words[3]} peers 2>/dev/null)"})
		compadd -a peers; return ;;
	esac
	if (( ${words[(I)peer]} > 3 )); then
		compadd -a peer_opts
	else
		compadd -a dev_opts
	fi
}

_wg() {
	local -a cmds fields
	cmds=(
		'show:Shows the current configuration and device information'
		'showconf:Shows the current configuration of a given WireGuard interface'
		'set:Change the current configuration, add peers, remove peers, or change peers'
		'setconf:Applies a configuration file to a WireGuard interface'
		'addconf:Appends a configuration file to a WireGuard interface'
		'syncconf:Synchronizes a configuration file to a WireGuard interface'
		'genkey:Generates a new private key and writes it to stdout'
		'genpsk:Generates a new preshared key and writes it to stdout'
		'pubkey:Reads a private key from stdin and writes a public key to stdout'
		'events:Prints events of WireGuard interfaces as they happen'
		'allowed-ips:Prints the fewest prefixes covering some addresses minus others'
		'exporter:Serves Prometheus metrics of WireGuard interfaces over HTTP'
	)
	fields=(public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips latest-handshakes transfer persistent-keepalive dump)
	if (( CURRENT == 2 )); then
		_describe -t commands 'wg command' cmds
		return
	fi
	case ${words[2]} in
	show)
		if (( CURRENT == 3 )); then
			compadd all interfaces; _wg_ifaces
		elif (( CURRENT == 4 )) && [[ ${words[3]} != interfaces ]]; then
			compadd -a fields
		fi ;;
	showconf) (( CURRENT == 3 )) && _wg_ifaces ;;
	setconf|addconf|syncconf)
		if (( CURRENT == 3 )); then _wg_ifaces; elif (( CURRENT == 4 )); then _files; fi ;;
	set)
		if (( CURRENT == 3 )); then _wg_ifaces; else _wg_set; fi ;;
	events) (( CURRENT == 3 )) && _wg_ifaces ;;
	allowed-ips) [[ ${words[CURRENT]} == -* ]] && compadd -- --except= ;;
	exporter)
		case ${words[CURRENT-1]} in
		--friendly-names) _files ;;
		--listen) _message 'ADDR:PORT' ;;
		*) compadd -- --listen= --friendly-names=; _wg_ifaces ;;
		esac ;;
	esac
}

_wg "$@"
