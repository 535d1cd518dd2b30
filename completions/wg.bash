# bash completion for wg(8)                                          -*- shell-script -*-
# Subcommands (with our extensions events, allowed-ips, exporter), interface names (from
# `wg show interfaces`), `wg set` options, extension options and file paths.

_wg_completion() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
	fi
	local cmds="show showconf set setconf addconf syncconf genkey genpsk pubkey events allowed-ips exporter"
	local fields="public-key private-key listen-port fwmark peers preshared-keys endpoints allowed-ips latest-handshakes transfer persistent-keepalive dump"

	if (( cword == 1 )); then
		COMPREPLY=( $(compgen -W "$cmds --help --version" -- "$cur") )
		return
	fi
	local ifaces
	ifaces=$(wg show interfaces 2>/dev/null)

	case ${words[1]} in
	show)
		if (( cword == 2 )); then
			COMPREPLY=( $(compgen -W "all interfaces $ifaces" -- "$cur") )
		elif (( cword == 3 )) && [[ ${words[2]} != interfaces ]]; then
			COMPREPLY=( $(compgen -W "$fields" -- "$cur") )
		fi
		;;
	showconf)
		(( cword == 2 )) && COMPREPLY=( $(compgen -W "$ifaces" -- "$cur") )
		;;
	setconf|addconf|syncconf)
		if (( cword == 2 )); then
			COMPREPLY=( $(compgen -W "$ifaces" -- "$cur") )
		elif (( cword == 3 )); then
			COMPREPLY=( $(compgen -f -- "$cur") )
		fi
		;;
	events)
		(( cword == 2 )) && COMPREPLY=( $(compgen -W "$ifaces --help" -- "$cur") )
		;;
	allowed-ips)
		[[ $cur == -* ]] && COMPREPLY=( $(compgen -W "--except= --help" -- "$cur") )
		;;
	exporter)
		if [[ $prev == --friendly-names ]]; then
			COMPREPLY=( $(compgen -f -- "$cur") )
		elif [[ $prev != --listen ]]; then
			COMPREPLY=( $(compgen -W "--listen= --friendly-names= --help $ifaces" -- "$cur") )
		fi
		;;
	set)
		if (( cword == 2 )); then
			COMPREPLY=( $(compgen -W "$ifaces" -- "$cur") )
			return
		fi
		case $prev in
		private-key|preshared-key) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
		listen-port|fwmark|endpoint|persistent-keepalive|allowed-ips) return ;;
		peer)
			local peers
			peers=$(wg show "${words[2]}" peers 2>/dev/null)
			COMPREPLY=( $(compgen -W "$peers" -- "$cur") )
			return ;;
		esac
		local i in_peer=0
		for (( i = 3; i < cword; i++ )); do [[ ${words[i]} == peer ]] && in_peer=1; done
		if (( in_peer )); then
			COMPREPLY=( $(compgen -W "peer remove preshared-key endpoint persistent-keepalive allowed-ips" -- "$cur") )
		else
			COMPREPLY=( $(compgen -W "listen-port fwmark private-key peer" -- "$cur") )
		fi
		;;
	esac
}
complete -F _wg_completion wg
