"""Who a unit trusts, and for what: keys and roles, signed documents, counters (docs/security.md).

* ``signed``: the signed document every trust decision reads (an Ed25519 signature by a named
  key, for one kind of document), checked in a short-lived child process.
* ``keyring``: the public keys a unit pins at commissioning, in a root-owned file.
* ``keys``: the laptop's side: making keys, keeping private keys under a passphrase, signing,
  certifying a nurse's laptop key.
* ``freshness``: monotonic counters against rollback and freeze, and the ward's recovery.
"""
