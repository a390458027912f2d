#!/usr/bin/env bash
# fetch-schema.sh OUT: GitHub's public GraphQL schema from the npm package
# @octokit/graphql-schema 15.26.1 (MIT), for when shared/github/schema.graphql
# is not beside the checkout. npm verifies the package's integrity.
set -euo pipefail
out=$1
version=15.26.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@octokit/graphql-schema@$version" >/dev/null)
tar -xzf "$tmp"/octokit-graphql-schema-$version.tgz -C "$tmp" package/schema.graphql
mkdir -p "$(dirname "$out")"
mv "$tmp/package/schema.graphql" "$out"
echo "fetch-schema: $out from @octokit/graphql-schema@$version" >&2
