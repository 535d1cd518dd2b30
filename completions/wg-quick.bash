# bash completion for wg-quick(8)                                    -*- shell-script -*-
# Commands (with our extensions reload and qr), then configuration names from /etc/wireguard (for
# up/save/strip/reload/qr), running interfaces (for down/save/reload), or config file paths.

_wg_quick_completion() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if (( COMP_CWORD == 1 )); then
		COMPREPLY=( $(compgen -W "up down save strip reload qr --help" -- "$cur") )
		return
	fi
	(( COMP_CWORD == 2 )) || return
	local names=() f
	case ${COMP_WORDS[1]} in
	up|strip|save|reload|qr)
		for f in /etc/wireguard/*.conf; do [[ -e $f ]] && f=${f##*/} && names+=("${f%.conf}"); done ;;
	esac
	case ${COMP_WORDS[1]} in
	down|save|reload)
		names+=( $(wg show interfaces 2>/dev/null) ) ;;
	esac
	COMPREPLY=( $(compgen -W "${names[*]}" -- "$cur") $(compgen -f -X '!*.conf' -- "$cur") )
}
complete -o filenames -F _wg_quick_completion wg-quick
