import { defineCommand } from '../define.js';

/**
 * The scripts stay thin: at each Tab they run `tslxc __complete` with the words so far, which
 * knows the grammar and the names (lib/cli/complete.ts). So an upgraded tslxc completes its new
 * verbs without the script being installed again.
 */
const BASH = `# bash completion for tslxc: printed by "tslxc completion bash".
# Install: tslxc completion bash > /usr/share/bash-completion/completions/tslxc
_tslxc_complete() {
  local cur words cword out
  if declare -F _get_comp_words_by_ref >/dev/null; then
    # "remote:image" stays one word; "--opt=value" is three, as bash replaces only the value.
    _get_comp_words_by_ref -n : cur words cword
  else
    words=("\${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur=\${COMP_WORDS[COMP_CWORD]}
  fi
  COMPREPLY=()
  out=$("\${words[0]}" __complete "\${words[@]:1:cword}" 2>/dev/null) || return 0
  if [ "$out" = ":files" ]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    return 0
  fi
  [ -n "$out" ] && mapfile -t COMPREPLY <<<"$out"
  if declare -F __ltrim_colon_completions >/dev/null; then __ltrim_colon_completions "$cur"; fi
  return 0
}
complete -F _tslxc_complete tslxc
`;

const ZSH = `#compdef tslxc
# zsh completion for tslxc: printed by "tslxc completion zsh".
# Install: tslxc completion zsh > "\${fpath[1]}/_tslxc", or add to ~/.zshrc: source <(tslxc completion zsh)
_tslxc() {
  local out
  local -a candidates
  out=$("\${words[1]}" __complete "\${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
  if [[ $out == ':files' ]]; then
    _files
    return
  fi
  [[ -n $out ]] || return 1
  candidates=("\${(@f)out}")
  compadd -- "\${candidates[@]}"
}
if [[ "\${funcstack[1]}" == _tslxc ]]; then
  _tslxc "$@"
else
  compdef _tslxc tslxc
fi
`;

export const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH };

export default defineCommand({
  command: 'completion <shell>',
  describe: 'Print the shell completion script (bash or zsh)',
  positionals: { shell: { kind: 'text', choices: ['bash', 'zsh'], describe: 'the shell' } },
  run: async (argv) => {
    process.stdout.write(SCRIPTS[String(argv.shell)]!);
  },
});
