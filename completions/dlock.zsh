#compdef dlock
# dlock zsh completion, generated from the app (scripts/generate_docs.py; `dlock --show-completion` in zsh).
# Static: a TAB starts no Python. TARGET and ROOT complete as file names.
_dlock_completion() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]} verb= i
    for ((i = 2; i < CURRENT; i++)); do
        case ${words[i]} in
            (--branch|--check-interval|--commit|--conflict-exit-code|--depth|--grace|--note|--older-than|--storage-option|--timeout|--token|--ttl|--zk-auth|--zk-timeout|-b|-n|-o|-t) ((i++)) ;;
            (-*) ;;
            (*) verb=${words[i]}; break ;;
        esac
    done
    local -a options valued
    case $verb in
        ('') options=('-V:Print the version and exit.' '--version:Print the version and exit.' '--debug:Show tracebacks of errors.' '--install-completion:Install completion for the current shell.' '--show-completion:Show completion for the current shell, to copy it or customize the installation.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=() ;;
        (status) options=('--json:Print one JSON document (schema in the README).' '--ttl:Validity of a 14-byte (older Deep Lake) lock; default 300s.' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(--ttl -o --storage-option -b --branch --commit --zk-timeout --zk-auth) ;;
        (acquire) options=('-t:0 fails at once, -1 waits forever.' '--timeout:0 fails at once, -1 waits forever.' '--ttl:Lock lifetime unless refreshed.' '-n:Free text stored with the lock (why you hold it).' '--note:Free text stored with the lock (why you hold it).' '--hold:Keep holding and refreshing until SIGINT/SIGTERM, then release.' '--shared:Take a shared (read) lock (ZooKeeper only).' '--check-interval:While holding: confirm the lock is still ours this often (one read; 0 only at refresh).' '--json:Print one JSON document (schema in the README).' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(-t --timeout --ttl -n --note --check-interval -o --storage-option -b --branch --commit --zk-timeout --zk-auth) ;;
        (refresh) options=('--token:The owner token `acquire` printed.' '--ttl:New lifetime from now.' '--json:Print one JSON document (schema in the README).' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(--token --ttl -o --storage-option -b --branch --commit) ;;
        (release) options=('--token:Release the lock this token owns.' '--force:Remove the lock whoever holds it (asks first).' '-y:With --force: do not ask (needed without a terminal).' '--yes:With --force: do not ask (needed without a terminal).' '--if-stale:Remove the lock only if it is stale.' '--all:With --force on ZooKeeper: also remove waiters.' '--json:Print one JSON document (schema in the README).' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(--token -o --storage-option -b --branch --commit --zk-timeout --zk-auth) ;;
        (wait) options=('-t:Give up after this long (exit 1); -1 waits forever.' '--timeout:Give up after this long (exit 1); -1 waits forever.' '--json:Print one JSON document (schema in the README).' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(-t --timeout -o --storage-option -b --branch --commit --zk-timeout --zk-auth) ;;
        (run) options=('-t:How long to wait for the lock; -1 forever.' '--timeout:How long to wait for the lock; -1 forever.' '--ttl:Lock lifetime; refreshed at 40% of it.' '-n:Free text stored with the lock.' '--note:Free text stored with the lock.' '--shared:Take a shared (read) lock (ZooKeeper only).' '--conflict-exit-code:Exit with this code (0-255) instead of 1 when the lock stays busy.' '--grace:After losing the lock: time between SIGTERM and SIGKILL of COMMAND.' '--check-interval:While holding: confirm the lock is still ours this often (one read; 0 only at refresh).' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '-b:Deep Lake branch whose head is locked.' '--branch:Deep Lake branch whose head is locked.' '--commit:Lock this Deep Lake commit'\''s version directly.' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(-t --timeout --ttl -n --note --conflict-exit-code --grace --check-interval -o --storage-option -b --branch --commit --zk-timeout --zk-auth) ;;
        (list) options=('--stale:Only stale (and corrupt) locks.' '--held:Only held locks.' '--depth:How many directory levels below ROOT to look for datasets (0-64).' '--json:One JSON object per lock (JSON lines).' '--ttl:Validity of 14-byte (older Deep Lake) locks.' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(--depth --ttl -o --storage-option --zk-timeout --zk-auth) ;;
        (clean) options=('--older-than:Also remove held locks not refreshed for this long.' '--dry-run:Show what would be removed; remove nothing.' '-y:Do not ask (needed without a terminal).' '--yes:Do not ask (needed without a terminal).' '--depth:How many directory levels below ROOT to look for datasets (0-64).' '--json:One JSON object per lock acted on (JSON lines).' '--ttl:Validity of 14-byte (older Deep Lake) locks.' '-o:Passed to the fsspec filesystem (repeatable).' '--storage-option:Passed to the fsspec filesystem (repeatable).' '--zk-timeout:ZooKeeper connect/operation timeout.' '--zk-auth:ZooKeeper digest auth.' '-h:Show this message and exit.' '--help:Show this message and exit.'); valued=(--older-than --depth --ttl -o --storage-option --zk-timeout --zk-auth) ;;
        (*) _files; return ;;
    esac
    if (( ${valued[(Ie)$prev]} )); then  # the value of an option: free text unless listed here
        case $verb:$prev in
            (*) _message 'value' ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        _describe -t options 'option' options
    elif [[ -z $verb ]]; then
        local -a verbs=('status:Show every lock of each TARGET.' 'acquire:Take the lock and print its owner token (for `release --token` and `refresh`).' 'refresh:Extend a lock you hold (exit 6 if the token does not own it).' 'release:Release a lock: your own (--token), a stale one (--if-stale), or anyone'\''s...' 'wait:Wait until every TARGET is free (absent or stale).' 'run:Hold the lock while COMMAND runs; exit with its status (3 if the lock is lost).' 'list:List every dataset lock under ROOT, with a summary (N held, M stale, K corrupt).' 'clean:Remove stale and corrupt locks under ROOT (and with --older-than, abandoned...')
        _describe -t commands 'dlock command' verbs
    else
        _files  # TARGET/ROOT
    fi
}
# Autoloaded from fpath, this file is the body of _dlock: complete. Sourced: register.
if [[ ${funcstack[1]} == _dlock ]]; then
    _dlock_completion "$@"
else
    compdef _dlock_completion dlock
fi
