/** The token as `lxc config trust add` prints it: the last line is the token alone. */
export function printToken(r: { token: string; expiresAt: string; addresses: string[] }, name: string): void {
  if (!r.addresses.length)
    process.stderr.write(
      'Note: no "tslxc serve --listen" is running, so the token names no address: use "lxc remote add NAME https://HOST:PORT --password=TOKEN"\n',
    );
  console.log(`Client ${name} certificate add token (expires ${r.expiresAt}):`);
  console.log(r.token);
}
