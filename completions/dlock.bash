# dlock bash completion, generated from the app (scripts/generate_docs.py; `dlock --show-completion` in bash).
# Static: a TAB starts no Python. TARGET and ROOT complete as file names.
_dlock_completion() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} verb= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --branch|--check-interval|--commit|--conflict-exit-code|--depth|--fence|--format|--grace|--interval|--note|--older-than|--output|--pid|--rescan|--storage-option|--timeout|--token|--ttl|--validity|--zk-auth|--zk-timeout|-b|-n|-o|-t) ((i++)) ;;
            -*) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    local options= valued=
    case $verb in
        '') options='-V --version --debug --install-completion --show-completion -h --help'; valued='' ;;
        status) options='--json --ttl -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='--ttl -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        acquire) options='-t --timeout --ttl -n --note --hold --shared --check-interval --json -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='-t --timeout --ttl -n --note --check-interval -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        refresh) options='--token --ttl --json -o --storage-option -b --branch --commit -h --help'; valued='--token --ttl -o --storage-option -b --branch --commit' ;;
        check) options='--token --fence --json -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='--token --fence -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        release) options='--token --force -y --yes --if-stale --all --json -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='--token -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        wait) options='-t --timeout --json -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='-t --timeout -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        run) options='-t --timeout --ttl -n --note --shared --conflict-exit-code --grace --check-interval -o --storage-option -b --branch --commit --zk-timeout --zk-auth -h --help'; valued='-t --timeout --ttl -n --note --conflict-exit-code --grace --check-interval -o --storage-option -b --branch --commit --zk-timeout --zk-auth' ;;
        list) options='--stale --held --depth --json --format --output --ttl -o --storage-option --zk-timeout --zk-auth -h --help'; valued='--depth --format --output --ttl -o --storage-option --zk-timeout --zk-auth' ;;
        clean) options='--older-than --dry-run -y --yes --depth --json --ttl -o --storage-option --zk-timeout --zk-auth -h --help'; valued='--older-than --depth --ttl -o --storage-option --zk-timeout --zk-auth' ;;
        guard) options='--pid --all --depth --rescan --until-idle --validity --interval --check-interval --json -o --storage-option -h --help'; valued='--pid --depth --rescan --validity --interval --check-interval -o --storage-option' ;;
        *) return ;;
    esac
    if [[ " $valued " == *" $prev "* ]]; then  # the value of an option: free text unless listed here
        case $verb:$prev in
            list:--format) COMPREPLY=($(compgen -W "table json prometheus" -- "$cur")) ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W 'status acquire refresh check release wait run list clean guard' -- "$cur"))
    fi  # else TARGET/ROOT: bash's file names (-o default)
}
complete -o default -F _dlock_completion dlock
