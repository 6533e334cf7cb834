# Shared by tools/skiff, tools/setup, tools/demo and tools/test. Source it; do not run it.
# Finds the newest JDK (21 or later), the JVM flags from jvm.properties, and builds what is missing.

SKIFF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

skiff_find_jdk() {
  # Newest JDK >= 21: $SKIFF_JAVA_HOME, then /usr/lib/jvm/*, then $JAVA_HOME, then java on PATH.
  local best="" best_v=0 cand v
  for cand in ${SKIFF_JAVA_HOME:-} /usr/lib/jvm/* ${JAVA_HOME:-} "$(dirname "$(dirname "$(readlink -f "$(command -v javac 2>/dev/null || echo /nonexistent)")")")"; do
    [ -x "$cand/bin/javac" ] || continue
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$cand/release" 2>/dev/null)
    [ -n "$v" ] || v=$("$cand/bin/javac" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p')
    [ -n "$v" ] || continue
    if [ "$v" -ge 21 ] && [ "$v" -gt "$best_v" ]; then best="$cand"; best_v="$v"; fi
  done
  if [ -z "$best" ]; then
    echo "skiff: no JDK 21 or newer found (looked in \$SKIFF_JAVA_HOME, /usr/lib/jvm, \$JAVA_HOME, PATH)." >&2
    echo "skiff: install one (for example Temurin 21+) and set SKIFF_JAVA_HOME to it." >&2
    return 1
  fi
  export JAVA_HOME="$best"
  SKIFF_JAVA_VERSION="$best_v"
}

skiff_jvm_flags() {
  local flags
  flags=$(sed -n 's/^skiff.jvm.flags=//p' "$SKIFF_ROOT/jvm.properties")
  if [ "${SKIFF_JAVA_VERSION:-0}" -lt 23 ]; then
    flags=$(echo "$flags" | sed 's/--sun-misc-unsafe-memory-access=allow//')
  fi
  echo "$flags"
}

skiff_need_root_packages() {
  # Debian packages the project uses: FUSE 3, umoci/skopeo for real images, squashfuse for benchmarks,
  # PostgreSQL for the scheduler's shared state (its tests start a server of their own), runc for
  # GPU containers an operator lets run without gVisor, docker-registry (and htpasswd) for the
  # registry tests, which start one of their own; debootstrap for Debian bases built from apt's mirror.
  local pkgs="fuse3 libfuse3-3 libfuse3-dev maven umoci skopeo squashfuse squashfs-tools attr python3 tar postgresql openssl runc docker-registry apache2-utils debootstrap"
  local missing=""
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -n "$missing" ]; then
    echo "skiff: installing Debian packages:$missing" >&2
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2 || return 1
  fi
  skiff_need_runsc "$sudo"
}

skiff_need_runsc() {
  # gVisor for skiff run: runsc 2024-07 from bookworm-backports (systrap, nvproxy) where the
  # suite can be had, else Debian 12's own runsc 2022-12 (ptrace). Both are supported.
  local sudo="$1"
  dpkg-query -W -f='${Status}' runsc 2>/dev/null | grep -q "install ok installed" && return 0
  if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release \
      && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "skiff: adding Debian's bookworm-backports suite to apt's sources (for runsc 2024-07)" >&2
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $sudo tee /etc/apt/sources.list.d/skiff-backports.sources >/dev/null
  fi
  echo "skiff: installing gVisor (runsc)" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -t bookworm-backports runsc >&2 2>/dev/null \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq runsc >&2
}

skiff_build() {
  # Builds the reactor (no tests) when the CLI jar is missing or older than any source.
  local jar="$SKIFF_ROOT/tools/target/skiff.jar"
  if [ -f "$jar" ] && [ -z "$(find "$SKIFF_ROOT" \( -path "$SKIFF_ROOT/.git" -o -path "$SKIFF_ROOT/examples" -o -name target \) -prune -o \( -name '*.java' -o -name '*.proto' -o -name '*.py' -o -name pom.xml -o -name jvm.properties \) -newer "$jar" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  if [ ! -w "$SKIFF_ROOT/tools" ] || { [ -d "$SKIFF_ROOT/tools/target" ] && [ ! -w "$SKIFF_ROOT/tools/target" ]; }; then
    if [ -f "$jar" ]; then
      echo "skiff: sources in $SKIFF_ROOT are newer than the built CLI, which this user cannot rebuild; using it as built" >&2
      return 0
    fi
    echo "skiff: the CLI is not built and this user cannot build it in $SKIFF_ROOT: run tools/setup as its owner" >&2
    return 1
  fi
  # One build at a time: two commands started together would overwrite each other's jars. The
  # second waits for the first, then finds the jar up to date.
  mkdir -p "$SKIFF_ROOT/tools/target"
  exec 9>"$SKIFF_ROOT/tools/target/.build-lock"
  flock 9
  if [ -f "$jar" ] && [ -z "$(find "$SKIFF_ROOT" \( -path "$SKIFF_ROOT/.git" -o -path "$SKIFF_ROOT/examples" -o -name target \) -prune -o \( -name '*.java' -o -name '*.proto' -o -name '*.py' -o -name pom.xml -o -name jvm.properties \) -newer "$jar" -print -quit 2>/dev/null)" ]; then
    exec 9>&-
    return 0
  fi
  echo "skiff: building (mvn install -DskipTests) with JDK $SKIFF_JAVA_VERSION at $JAVA_HOME" >&2
  # The formatting check is tools/test's: a user's own edit still builds and runs here.
  (cd "$SKIFF_ROOT" && MAVEN_OPTS="$(skiff_maven_opts)" mvn -B -q -Dstyle.color=never install -DskipTests \
    -Dspotless.check.skip=true) >&2
  local rc=$?
  exec 9>&-
  return $rc
}

skiff_maven_opts() {
  # Maven's own guava calls sun.misc.Unsafe; newer JDKs warn unless allowed.
  if [ "${SKIFF_JAVA_VERSION:-0}" -ge 23 ]; then echo "--sun-misc-unsafe-memory-access=allow ${MAVEN_OPTS:-}"; else echo "${MAVEN_OPTS:-}"; fi
}

skiff_aot_flags() {
  # A JDK AOT cache (JDK 25+) of the CLI's classes, recorded by a short training run after each
  # build: it halves start-up (measured: skiff pull 0.7 s instead of 1.5 s). The JVM ignores a
  # cache that does not match the jar, so a stale one costs nothing but a warning we silence.
  [ "${SKIFF_JAVA_VERSION:-0}" -ge 25 ] || return 0
  [ "${SKIFF_NO_AOT:-}" = "1" ] && return 0
  local jar="$SKIFF_ROOT/tools/target/skiff.jar" aot="$SKIFF_ROOT/tools/target/skiff.aot"
  if [ ! -f "$aot" ] || [ "$jar" -nt "$aot" ]; then
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2046
    "$JAVA_HOME/bin/java" $(skiff_jvm_flags) -XX:+UseParallelGC -XX:AOTCacheOutput="$aot" -Xlog:aot=off -Xlog:cds=off \
      -jar "$jar" train-aot "$work" >/dev/null 2>&1 || rm -f "$aot"
    rm -rf "$work"
  fi
  [ -f "$aot" ] && echo "-XX:AOTCache=$aot -Xlog:aot=off -Xlog:cds=off"
}

skiff_other_runsc() {
  # Prints the path of the runsc release Debian offers besides the installed one (2022-12 in
  # bookworm, 2024-07 in bookworm-backports), fetched once with apt-get download, so that the
  # tests cover both. Prints nothing when it cannot be had.
  local installed other dir deb
  installed=$(dpkg-query -W -f='${Version}' runsc 2>/dev/null) || return 0
  other=$(apt-cache madison runsc 2>/dev/null | awk -v v="$installed" '$3 != v {print $3; exit}')
  [ -n "$other" ] || return 0
  dir="/var/cache/skiff/runsc-$other"
  if [ ! -x "$dir/usr/bin/runsc" ]; then
    mkdir -p "$dir" && (cd "$dir" && apt-get download -q "runsc=$other" >/dev/null 2>&1) || return 0
    deb=$(ls "$dir"/runsc_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] && dpkg-deb -x "$deb" "$dir" && rm -f "$deb"
  fi
  [ -x "$dir/usr/bin/runsc" ] && echo "$dir/usr/bin/runsc"
}
