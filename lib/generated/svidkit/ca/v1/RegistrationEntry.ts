// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface RegistrationEntry {
  'id'?: (string);
  'spiffeId'?: (string);
  'parentId'?: (string);
  'x509SvidTtlSeconds'?: (number);
  'jwtSvidTtlSeconds'?: (number);
  'dnsNames'?: (string)[];
  /**
   * Unix seconds.
   */
  'createdAt'?: (number | string | Long);
  /**
   * SPIRE's "type:value" selectors (unix:uid:1000, unix:path:/usr/bin/node): a Workload API caller
   * gets this entry's SVIDs when it has every one of them. An entry with none is for the agent's
   * configured file workloads only. The CA returns them validated, de-duplicated and sorted.
   */
  'selectors'?: (string)[];
  /**
   * A SPIFFE ID template (lib/ca-api/templates.ts), set instead of spiffe_id: the agent fills it from
   * an attested caller's selectors, and the CA signs only IDs the template can name. parent_id may be
   * an agent or a node alias.
   */
  'spiffeIdTemplate'?: (string);
}

export interface RegistrationEntry__Output {
  'id': (string);
  'spiffeId': (string);
  'parentId': (string);
  'x509SvidTtlSeconds': (number);
  'jwtSvidTtlSeconds': (number);
  'dnsNames': (string)[];
  /**
   * Unix seconds.
   */
  'createdAt': (number);
  /**
   * SPIRE's "type:value" selectors (unix:uid:1000, unix:path:/usr/bin/node): a Workload API caller
   * gets this entry's SVIDs when it has every one of them. An entry with none is for the agent's
   * configured file workloads only. The CA returns them validated, de-duplicated and sorted.
   */
  'selectors': (string)[];
  /**
   * A SPIFFE ID template (lib/ca-api/templates.ts), set instead of spiffe_id: the agent fills it from
   * an attested caller's selectors, and the CA signs only IDs the template can name. parent_id may be
   * an agent or a node alias.
   */
  'spiffeIdTemplate': (string);
}
