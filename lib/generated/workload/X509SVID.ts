// Original file: protos/spiffe/workload/workload.proto


/**
 * One X.509-SVID with its key and its own trust domain's bundle.
 */
export interface X509SVID {
  'spiffeId'?: (string);
  /**
   * Concatenated DER certificates, the leaf first, then any intermediates.
   */
  'x509Svid'?: (Buffer | Uint8Array | string);
  /**
   * The leaf's private key, unencrypted PKCS#8 DER.
   */
  'x509SvidKey'?: (Buffer | Uint8Array | string);
  /**
   * Concatenated DER certificates of the SVID's own trust domain.
   */
  'bundle'?: (Buffer | Uint8Array | string);
  /**
   * Set by the operator to tell SVIDs apart ("internal", "external"); unique within a response.
   */
  'hint'?: (string);
}

/**
 * One X.509-SVID with its key and its own trust domain's bundle.
 */
export interface X509SVID__Output {
  'spiffeId': (string);
  /**
   * Concatenated DER certificates, the leaf first, then any intermediates.
   */
  'x509Svid': (Buffer);
  /**
   * The leaf's private key, unencrypted PKCS#8 DER.
   */
  'x509SvidKey': (Buffer);
  /**
   * Concatenated DER certificates of the SVID's own trust domain.
   */
  'bundle': (Buffer);
  /**
   * Set by the operator to tell SVIDs apart ("internal", "external"); unique within a response.
   */
  'hint': (string);
}
