# Run by `deno task demo` inside the test guest: stacd against a real NVMe/TCP target.
exec node_modules/.bin/deno run --allow-all --frozen tests/guest/demo_guest.ts
