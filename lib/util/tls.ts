import { TslxcError } from '../errors.js';

/**
 * Extra CA certificates only for the runs that connect. node reads every certificate of
 * NODE_EXTRA_CA_CERTS when it starts, before any of our code: with a system bundle set globally
 * (a whole distribution's bundle) that is a real share of every short command. bin/tslxc starts
 * create/init/launch without it and keeps its value in TSLXC_NODE_EXTRA_CA_CERTS; most of them
 * use a stored image and never connect. One that has to download or build an image calls needTls
 * first, before it has made anything; it throws NeedsTlsError, and the CLI's entry runs the
 * command again, the same way, with the certificates (node cannot add them to a running process)
 * and exits with that run's code. A library caller that never set TSLXC_NODE_EXTRA_CA_CERTS (the
 * API, a test) never sees the error.
 */
export const SAVED_CA_CERTS = 'TSLXC_NODE_EXTRA_CA_CERTS';

/** This process was started without the CA certificates it now needs: run it again with them. */
export class NeedsTlsError extends TslxcError {
  constructor() {
    super(
      'This command has to connect, and node was started without the CA certificates of NODE_EXTRA_CA_CERTS',
      `they were kept aside in ${SAVED_CA_CERTS}`,
      'run it again with NODE_EXTRA_CA_CERTS set',
    );
    this.name = 'NeedsTlsError';
  }
}

export function needTls(): void {
  if (process.env[SAVED_CA_CERTS] && !process.env.NODE_EXTRA_CA_CERTS) throw new NeedsTlsError();
}
