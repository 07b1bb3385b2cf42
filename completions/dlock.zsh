#compdef dlock

_dlock_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _DLOCK_COMPLETE=complete_zsh dlock)
}

compdef _dlock_completion dlock
