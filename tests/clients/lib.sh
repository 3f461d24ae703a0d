# Shared helpers for the scripts that run documented commands for real
# (.ci/readme-check, tests/clients/run.sh): a private network namespace,
# a throw-away PKI made with openssl, a loopback origin, log waits.
# Sourced, not run. Every wait has a deadline; every failure is loud.

# Fail the whole run with a message.
die() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

say() { printf '\n--- %s\n' "$*"; }

# Re-run the calling script inside a new user, network and mount namespace
# (only loopback exists there, so nothing can reach a real network), unless
# it already is. Usage: in_private_netns "$0" "$@"
in_private_netns() {
  if [[ -n "${SMOKESCREEN_PRIVATE_NETNS:-}" ]]; then
    ip link set lo up || die "ip link set lo up failed in the namespace"
    return 0
  fi
  command -v unshare >/dev/null || die "unshare (util-linux) is needed"
  SMOKESCREEN_PRIVATE_NETNS=1 exec unshare -rnm -- bash "$@"
}

# Point this namespace's /etc/hosts at our own file (bind mount, private
# to the mount namespace). Arguments: lines "IP NAME...".
use_hosts() {
  local file=$WORK/hosts
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$file"
  printf '%s\n' "$@" >>"$file"
  mount --bind "$file" /etc/hosts || die "cannot bind-mount $file on /etc/hosts"
}

# Wait until a command succeeds, at most $1 seconds.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for: $*"
    sleep 0.05
  done
}

# Wait until file $1 has a line matching grep -E pattern $2 (20 s).
wait_log() {
  wait_for 20 grep -qE -- "$2" "$1" || true
  grep -qE -- "$2" "$1" || { cat "$1" >&2; die "no line matching '$2' in $1"; }
}

# A test CA, a server certificate for the names/IPs given, a client
# certificate (CN billing) and an empty CRL, in directory $1.
# Files: ca.pem ca.key server.pem (chain+key) server.crt server.key
# client.pem client.key crl.pem
make_pki() {
  local dir=$1
  shift
  local san="" n
  for n in "$@"; do
    if [[ $n =~ ^[0-9.]+$ ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
  done
  san=${san%,}
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 \
      -subj /CN=smokescreen-test-ca \
      -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=test-server 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
      "$san" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 2 -extfile server.ext -out server.crt 2>/dev/null
    cat server.crt server.key >server.pem
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj /CN=billing 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 2 -extfile client.ext -out client.pem 2>/dev/null
    : >index.txt
    echo 01 >crlnumber
    printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n' >ca.cnf
    openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl.pem 2>/dev/null
  ) || die "making the test PKI in $dir failed"
  [[ -s $dir/crl.pem && -s $dir/client.pem && -s $dir/server.pem ]] || die "test PKI incomplete in $dir"
}

# Start the loopback origin (tests/clients/origin.py) on address $1: HTTP on
# port 80, HTTPS on 443 with $2 (cert) and $3 (key). Logs to $WORK/origin-$1.log.
start_origin() {
  local ip=$1 cert=$2 key=$3
  [[ $ip == 127.* ]] || ip addr add "$ip/32" dev lo || die "cannot add $ip to lo"
  python3 "$CLIENTS_DIR/origin.py" "$ip" "$cert" "$key" >"$WORK/origin-$ip.log" 2>&1 &
  wait_log "$WORK/origin-$ip.log" '^serving'
}
