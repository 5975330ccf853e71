/**
 * The Workload API contract: the proto's service, methods and field numbers read back from the loaded
 * descriptor and compared with the standard's, the loader options kept equal to lib/grpc's, and the
 * endpoint address rules of SPIFFE_Workload_Endpoint.md as a table.
 */
import { strict as assert } from 'node:assert';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../lib/grpc/protos.js';
import {
  ENDPOINT_SOCKET_ENV,
  loadWorkloadApi,
  parseEndpointAddress,
  resolveEndpointAddress,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
  WORKLOAD_LOADER_OPTIONS,
  WORKLOAD_PROTO_FILE,
} from '../lib/workloadapi/index.js';
import { assertCode } from './helpers/assert.js';

/** Field name (as the loader names it), number and type, per message: the standard's workloadapi.proto. */
const STANDARD_FIELDS: Record<string, [string, number, string][]> = {
  X509SVIDRequest: [],
  X509SVIDResponse: [
    ['svids', 1, 'TYPE_MESSAGE'],
    ['crl', 2, 'TYPE_BYTES'],
    ['federatedBundles', 3, 'TYPE_MESSAGE'],
  ],
  X509SVID: [
    ['spiffeId', 1, 'TYPE_STRING'],
    ['x509Svid', 2, 'TYPE_BYTES'],
    ['x509SvidKey', 3, 'TYPE_BYTES'],
    ['bundle', 4, 'TYPE_BYTES'],
    ['hint', 5, 'TYPE_STRING'],
  ],
  X509BundlesRequest: [],
  X509BundlesResponse: [
    ['crl', 1, 'TYPE_BYTES'],
    ['bundles', 2, 'TYPE_MESSAGE'],
  ],
  JWTSVIDRequest: [
    ['audience', 1, 'TYPE_STRING'],
    ['spiffeId', 2, 'TYPE_STRING'],
  ],
  JWTSVIDResponse: [['svids', 1, 'TYPE_MESSAGE']],
  JWTSVID: [
    ['spiffeId', 1, 'TYPE_STRING'],
    ['svid', 2, 'TYPE_STRING'],
    ['hint', 3, 'TYPE_STRING'],
  ],
  JWTBundlesRequest: [],
  JWTBundlesResponse: [['bundles', 1, 'TYPE_MESSAGE']],
  ValidateJWTSVIDRequest: [
    ['audience', 1, 'TYPE_STRING'],
    ['svid', 2, 'TYPE_STRING'],
  ],
  ValidateJWTSVIDResponse: [
    ['spiffeId', 1, 'TYPE_STRING'],
    ['claims', 2, 'TYPE_MESSAGE'],
  ],
  WITSVIDRequest: [['spiffeId', 1, 'TYPE_STRING']],
  WITSVIDResponse: [['svids', 1, 'TYPE_MESSAGE']],
  WITSVID: [
    ['spiffeId', 1, 'TYPE_STRING'],
    ['witSvid', 2, 'TYPE_STRING'],
    ['witSvidKey', 3, 'TYPE_STRING'],
    ['hint', 4, 'TYPE_STRING'],
  ],
  WITBundlesRequest: [],
  WITBundlesResponse: [['bundles', 1, 'TYPE_MESSAGE']],
};

/** Repeated fields, and the map fields with their value type (keys are strings in every one). */
const REPEATED = [
  'X509SVIDResponse.svids',
  'X509SVIDResponse.crl',
  'X509BundlesResponse.crl',
  'JWTSVIDRequest.audience',
];
const MAPS: Record<string, string> = {
  'X509SVIDResponse.federatedBundles': 'TYPE_BYTES',
  'X509BundlesResponse.bundles': 'TYPE_BYTES',
  'JWTBundlesResponse.bundles': 'TYPE_BYTES',
  'WITBundlesResponse.bundles': 'TYPE_STRING',
};

/** RPC name: [request, response, response streamed]. */
const STANDARD_METHODS: Record<string, [string, string, boolean]> = {
  FetchX509SVID: ['X509SVIDRequest', 'X509SVIDResponse', true],
  FetchX509Bundles: ['X509BundlesRequest', 'X509BundlesResponse', true],
  FetchJWTSVID: ['JWTSVIDRequest', 'JWTSVIDResponse', false],
  FetchJWTBundles: ['JWTBundlesRequest', 'JWTBundlesResponse', true],
  ValidateJWTSVID: ['ValidateJWTSVIDRequest', 'ValidateJWTSVIDResponse', false],
  FetchWITSVID: ['WITSVIDRequest', 'WITSVIDResponse', true],
  FetchWITBundles: ['WITBundlesRequest', 'WITBundlesResponse', true],
};

interface FieldDescriptor {
  name: string;
  number: number;
  type: string;
  label: string;
  typeName: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: (MessageDescriptor & { options?: { mapEntry?: boolean } | null })[];
}

describe('Workload API proto', () => {
  const definition = loadSync(WORKLOAD_PROTO_FILE, WORKLOAD_LOADER_OPTIONS);
  const message = (name: string): MessageDescriptor => {
    const def = definition[name] as { type?: MessageDescriptor } | undefined;
    assert.ok(def?.type, `${name} is not a message of the proto`);
    return def.type;
  };

  it('loads with lib/grpc’s loader options, from this package’s protos/', () => {
    const { includeDirs: ours, ...rest } = WORKLOAD_LOADER_OPTIONS;
    const { includeDirs: theirs, ...grpcRest } = LOADER_OPTIONS;
    assert.deepEqual(rest, grpcRest);
    assert.deepEqual(ours, theirs);
  });

  it('has no package: the service is SpiffeWorkloadAPI and the paths are /SpiffeWorkloadAPI/<Method>', async () => {
    const service = definition['SpiffeWorkloadAPI'] as Record<
      string,
      {
        path: string;
        requestStream: boolean;
        responseStream: boolean;
        requestType: { type: MessageDescriptor };
        responseType: { type: MessageDescriptor };
      }
    >;
    assert.deepEqual(Object.keys(service).sort(), Object.keys(STANDARD_METHODS).sort());
    for (const [name, [req, res, streamed]] of Object.entries(STANDARD_METHODS)) {
      const m = service[name]!;
      assert.equal(m.path, `/SpiffeWorkloadAPI/${name}`);
      assert.equal(m.requestStream, false, `${name} takes one request`);
      assert.equal(m.responseStream, streamed, `${name} streaming`);
      assert.equal(m.requestType.type.name, req);
      assert.equal(m.responseType.type.name, res);
    }
    const packages = Object.keys(definition).filter((k) => k.includes('.') && !k.startsWith('google.protobuf.'));
    assert.deepEqual(packages, [], 'only google.protobuf types may carry a package');
    const { proto } = await loadWorkloadApi();
    assert.equal(proto.SpiffeWorkloadAPI.service.FetchX509SVID.path, '/SpiffeWorkloadAPI/FetchX509SVID');
  });

  it('numbers and types every field as the standard does', () => {
    const messages = Object.keys(definition).filter((k) => !k.startsWith('google.') && k !== 'SpiffeWorkloadAPI');
    assert.deepEqual(messages.sort(), Object.keys(STANDARD_FIELDS).sort());
    for (const [name, fields] of Object.entries(STANDARD_FIELDS)) {
      const got = message(name).field.map((f) => [f.name, f.number, f.type]);
      assert.deepEqual(got, fields, `fields of ${name}`);
      for (const f of message(name).field) {
        const key = `${name}.${f.name}`;
        const repeated = REPEATED.includes(key) || key.endsWith('.svids') || key in MAPS;
        assert.equal(f.label, repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL', `label of ${key}`);
      }
    }
    for (const [key, valueType] of Object.entries(MAPS)) {
      const [msg, field] = key.split('.') as [string, string];
      const f = message(msg).field.find((x) => x.name === field)!;
      const entry = message(msg).nestedType.find((n) => n.name === f.typeName);
      assert.ok(entry?.options?.mapEntry, `${key} is a map`);
      assert.deepEqual(
        entry.field.map((x) => [x.name, x.number, x.type]),
        [
          ['key', 1, 'TYPE_STRING'],
          ['value', 2, valueType],
        ],
        `${key} is map<string, ${valueType}>`,
      );
    }
    const claims = message('ValidateJWTSVIDResponse').field.find((f) => f.name === 'claims')!;
    assert.equal(claims.typeName, 'google.protobuf.Struct');
    assert.ok(definition['google.protobuf.Struct'], 'Struct comes from the bundled google protos');
  });

  it('names the security header as the standard does', () => {
    assert.equal(WORKLOAD_API_HEADER, 'workload.spiffe.io');
    assert.equal(WORKLOAD_API_HEADER_VALUE, 'true');
  });
});

describe('Workload API endpoint addresses', () => {
  const good: [string, string][] = [
    ['unix:///tmp/spire-agent/public/api.sock', 'unix:/tmp/spire-agent/public/api.sock'],
    ['unix:/run/svidkit/api.sock', 'unix:/run/svidkit/api.sock'],
    ['UNIX:///run/a.sock', 'unix:/run/a.sock'],
    ['unix:///run/with%20space.sock', 'unix:/run/with space.sock'],
    ['tcp://127.0.0.1:8000', '127.0.0.1:8000'],
    ['tcp://10.0.0.1:65535', '10.0.0.1:65535'],
    ['tcp://[::1]:8000', '[::1]:8000'],
    ['tcp://[fe80::1]:1', '[fe80::1]:1'],
  ];
  for (const [address, target] of good) {
    it(`accepts ${address}`, () => assert.equal(parseEndpointAddress(address), target));
  }

  const bad: [string, string, RegExp][] = [
    ['empty', '', /is empty/],
    ['a bare path', '/tmp/api.sock', /is not a URI/],
    ['another scheme', 'http://127.0.0.1:8000', /scheme "http"; only unix and tcp/],
    ['a unix authority', 'unix://host/tmp/api.sock', /has an authority/],
    ['a unix address without a path', 'unix://', /has no path/],
    ['a relative unix path', 'unix:tmp/api.sock', /relative path/],
    ['a unix query', 'unix:///tmp/api.sock?x=1', /has a query/],
    ['a unix fragment', 'unix:///tmp/api.sock#x', /has a fragment/],
    ['a directory', 'unix:///tmp/', /names a directory/],
    ['a bad percent-encoding', 'unix:///tmp/%zz', /invalid percent-encoding/],
    ['an encoded NUL', 'unix:///tmp/a%00b', /NUL byte/],
    ['an over-long socket path', `unix:///${'a'.repeat(200)}`, /longer than 107 bytes/],
    ['a space', 'unix:///tmp/a b', /space or a control character/],
    ['a host name', 'tcp://localhost:8000', /not an IP address/],
    ['no port', 'tcp://127.0.0.1', /has no port/],
    ['port 0', 'tcp://127.0.0.1:0', /port that is not a number from 1 to 65535/],
    ['a port too large', 'tcp://127.0.0.1:65536', /port that is not a number/],
    ['a named port', 'tcp://127.0.0.1:http', /port that is not a number/],
    ['a tcp path', 'tcp://127.0.0.1:8000/foo', /has a path/],
    ['a tcp trailing slash', 'tcp://127.0.0.1:8000/', /has a path/],
    ['a tcp query', 'tcp://127.0.0.1:8000?x', /has a query/],
    ['user information', 'tcp://u@127.0.0.1:8000', /user information/],
    ['no authority', 'tcp:127.0.0.1:8000', /has no authority/],
    ['IPv6 without brackets', 'tcp://::1:8000', /IPv6 host without brackets/],
    ['an IPv6 zone', 'tcp://[fe80::1%25eth0]:8000', /not an IPv6 address/],
    ['an unclosed bracket', 'tcp://[::1:8000', /unclosed IPv6 bracket/],
    ['an over-long address', `unix:///${'a'.repeat(5000)}`, /longer than 4096 characters/],
  ];
  for (const [name, address, why] of bad) {
    it(`refuses ${name}`, () => {
      const err = assertCode(() => parseEndpointAddress(address), 'ERR_WORKLOADAPI_ADDRESS', {
        prefix: 'workloadapi: ',
        message: why,
      });
      assert.equal(typeof err.detail['reason'], 'string');
    });
  }

  it('takes the option first, else SPIFFE_ENDPOINT_SOCKET, else refuses', () => {
    const env = { [ENDPOINT_SOCKET_ENV]: 'unix:///from/env.sock' };
    assert.equal(resolveEndpointAddress('unix:///from/option.sock', env), 'unix:/from/option.sock');
    assert.equal(resolveEndpointAddress(undefined, env), 'unix:/from/env.sock');
    assertCode(() => resolveEndpointAddress(undefined, {}), 'ERR_WORKLOADAPI_ADDRESS', {
      prefix: 'workloadapi: ',
      message: /set SPIFFE_ENDPOINT_SOCKET/,
    });
    assertCode(
      () => resolveEndpointAddress(undefined, { [ENDPOINT_SOCKET_ENV]: 'tcp://x:1' }),
      'ERR_WORKLOADAPI_ADDRESS',
    );
  });
});
