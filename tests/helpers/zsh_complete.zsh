# Real zsh completion, as a user's TAB runs it: zsh -f zsh_complete.zsh SETUP OUT LINE...
# Starts an interactive zsh on a pseudo-terminal (zpty), runs SETUP (which loads compinit
# and the script under test), types each LINE followed by TAB, and appends the line as
# completed to OUT (a key bound to a widget writes $BUFFER).
zmodload zsh/zpty || exit 1
local setup=$1 out=$2 waited=0
shift 2
zpty z zsh -f -i
zpty -w z "$setup; dump() { print -r -- \"\$BUFFER\" >> $out; }; zle -N dump; bindkey '^G' dump; : > $out.ready"
while [[ ! -e $out.ready ]]; do
  sleep 0.1
  (( ++waited < 300 )) || exit 1
done
sleep 0.3
for line in "$@"; do
  zpty -w -n z "$line"$'\t'
  sleep 0.3
  zpty -w -n z $'\x07'  # ^G: write the completed line to OUT
  zpty -w z $'\x15'     # ^U: clear it, then Enter on the empty line
done
# zle handles the keys in order however slow a completion is: wait for every line.
waited=0
while (( $(wc -l < $out) < $# )); do
  sleep 0.1
  (( ++waited < 300 )) || break
done
zpty -d z
