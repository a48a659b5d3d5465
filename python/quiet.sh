# Sourced by the build scripts (python/build.sh, examples/*/build.sh):
# quiet CMD... runs a command with its output captured and shows it only
# if the command fails.
quiet() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "build.sh: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}
