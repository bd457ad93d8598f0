# Building a program from its Go module, as the Go module proxy serves it: sourced by
# scripts/dagger-engine and scripts/testbed-go. The caller defines log and die.
#
# Why not `go install pkg@version`: it refuses a module whose go.mod has replace
# directives, and module zips leave out every folder that has a go.mod of its own. So:
# download the module, copy it, fetch each nested module that go.mod replaces by a local
# path by its own module path (at the release's commit, as a pseudo-version), put it
# where go.mod points, and build in the copy, where go.mod's replacements hold.

# The value at a dotted key path of the JSON document on stdin ("" when absent).
json_get() {
    python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)
' "$1"
}

# Download $1@$2 into the module cache and print go's JSON report. $3 says what it is for.
download() {
    local mod=$1 version=$2 purpose=$3 report
    if report=$(go mod download -json "$mod@$version" 2>&1); then
        printf '%s\n' "$report"
        return 0
    fi
    die "the Go module proxy did not give $mod@$version ($purpose)." \
        "go mod download said: $(json_get Error <<<"$report" 2>/dev/null || printf '%s' "$report")" \
        "GOPROXY=$(go env GOPROXY)" \
        "Unblock: the proxy must serve $mod at $version."
}

# v0.0.0-yyyymmddhhmmss-abcdefabcdef: the pseudo-version of a commit of a module path
# that has no tags of its own, from the commit's hash and time as the proxy reports them.
pseudo_version() {
    local hash=$1 time=$2
    printf 'v0.0.0-%s-%s\n' "$(date -u -d "$time" +%Y%m%d%H%M%S)" "${hash:0:12}"
}

# "path dir" per line: the nested modules that go.mod in $1 replaces by a folder of its own
local_replacements() {
    (cd "$1" && go mod edit -json) | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./"):
        print(r["Old"]["Path"], r["New"]["Path"][2:])
'
}

# Copy the module $1@$2 from the module cache into the folder $3 of the source tree $4.
fill() {
    local mod=$1 version=$2 dir=$3 src=$4 purpose=$5 report
    [ ! -e "$src/$dir/go.mod" ] || die "$src/$dir already has a go.mod: the module zip changed layout"
    report=$(download "$mod" "$version" "$purpose")
    mkdir -p "$src/$dir"
    cp -R "$(json_get Dir <<<"$report")/." "$src/$dir/"
    log "filled $dir from $mod@$version"
}

# Download the module $1@$2 and copy it, writable, to the folder $3. Sets MODULE_HASH
# and MODULE_PSEUDO (the release's commit, and its pseudo-version for nested modules),
# empty when the proxy does not report the commit.
copy_module() {
    local mod=$1 version=$2 src=$3 report info time
    report=$(download "$mod" "$version" "the source of $mod")
    info=$(json_get Info <<<"$report")
    MODULE_HASH=$(json_get Origin.Hash <<<"$report")
    time=$(json_get Time <"$info")
    MODULE_PSEUDO=""
    if [ -n "$MODULE_HASH" ] && [ -n "$time" ]; then
        MODULE_PSEUDO=$(pseudo_version "$MODULE_HASH" "$time")
    fi
    rm -rf "$src"
    cp -R "$(json_get Dir <<<"$report")" "$src"
    chmod -R u+w "$src"
}

# Fill every nested module that go.mod in $3 replaces by a local folder: those of the
# same repository as $1 at the release's commit (pseudo-version $4: they have no tags of
# their own), one published from a repository of its own at the release $2 itself.
fill_replacements() {
    local module=$1 version=$2 src=$3 pseudo=$4 mod dir modversion replacements repo
    repo=$(cut -d/ -f1-3 <<<"$module")
    replacements=$(local_replacements "$src")
    [ -n "$replacements" ] || return 0
    while read -r mod dir; do
        case $mod in
            "$repo"/*)
                [ -n "$pseudo" ] || die "$module@$version replaces $mod by ./$dir, and the" \
                    "proxy reported no commit of $version to fetch it at"
                modversion=$pseudo
                ;;
            *) modversion=$version ;;
        esac
        fill "$mod" "$modversion" "$dir" "$src" \
            "replaced by ./$dir in $module@$version's go.mod; commit $MODULE_HASH"
    done <<<"$replacements"
}
