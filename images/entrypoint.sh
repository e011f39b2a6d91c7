#!/bin/sh
# Runs one component of the release installed in /opt/bluegreen-ca. The first argument names
# the component when it does not start with "-"; otherwise BLUEGREEN_COMPONENT does (the
# image's COMPONENT build argument). Every other argument goes to the component.
set -eu

app=${BLUEGREEN_APP:-/opt/bluegreen-ca}
component=${BLUEGREEN_COMPONENT:-}
case "${1-}" in
  "" | -*) ;;
  *)
    component=$1
    shift
    ;;
esac

known=$(cd "$app/components" && ls -- *.mjs 2>/dev/null | sed 's/\.mjs$//' | tr '\n' ' ')
if [ -z "$component" ]; then
  echo "bluegreen-ca: name the component to run, one of: $known" >&2
  exit 64
fi
if [ ! -f "$app/components/$component.mjs" ]; then
  echo "bluegreen-ca: this release has no component $component; it has: $known" >&2
  exit 64
fi

# exec: the component is PID 1's direct replacement and receives SIGTERM and SIGUSR2 itself.
exec node --enable-source-maps "$app/components/$component.mjs" "$@"
