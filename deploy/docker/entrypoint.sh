#!/bin/bash
# Entry point of every Trellis image: runs trellis-$TRELLIS_COMPONENT with the given arguments.
#
# Secrets from files: TRELLIS_FILE__<REST>=/path becomes TRELLIS_<REST>=<contents of /path>
# (trailing newlines removed), e.g. TRELLIS_FILE__USERS__DATABASE__PASSWORD=/run/secrets/db-password
# sets users' database.password. For Docker/compose secrets and key files on volumes; the secret
# never appears in the container's configuration. The TRELLIS_FILE__ variable itself is removed,
# so the component's configuration loader never sees it.
set -euo pipefail

component=${TRELLIS_COMPONENT:?TRELLIS_COMPONENT is not set (the image sets it)}
bin_dir=${TRELLIS_BIN_DIR:-/usr/local/bin}

for name in $(compgen -e); do
  [[ $name == TRELLIS_FILE__?* ]] || continue
  file=${!name}
  if [[ ! -r $file ]]; then
    echo "trellis-entrypoint: $name names $file, which is not a readable file" >&2
    exit 78 # EX_CONFIG, like an invalid configuration
  fi
  target="TRELLIS_${name#TRELLIS_FILE__}"
  value=$(<"$file")
  export "$target=$value"
  unset "$name"
done

exec "$bin_dir/trellis-$component" "$@"
