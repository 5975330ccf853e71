/** GeneralName lists grouped by form, the shape SAN checks and name constraints both work on. */
import { AsnConvert } from '@peculiar/asn1-schema';
import type { GeneralName } from '@peculiar/asn1-x509';

/** Names of a GeneralNames sequence, grouped by form. Forms svidkit does not process are counted in `other`. */
export interface GeneralNames {
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emails: readonly string[];
  /** DER encodings of directoryName entries. */
  readonly directoryNames: readonly Buffer[];
  /** Forms present but not processed (otherName, x400Address, ediPartyName, registeredID). */
  readonly other: readonly string[];
}

/** Groups a list of GeneralName by form. */
export function generalNamesOf(names: Iterable<GeneralName>): GeneralNames {
  const out = {
    uris: [] as string[],
    dnsNames: [] as string[],
    ipAddresses: [] as string[],
    emails: [] as string[],
    directoryNames: [] as Buffer[],
    other: [] as string[],
  };
  for (const n of names) {
    if (n.uniformResourceIdentifier !== undefined) out.uris.push(n.uniformResourceIdentifier);
    else if (n.dNSName !== undefined) out.dnsNames.push(n.dNSName);
    else if (n.iPAddress !== undefined) out.ipAddresses.push(n.iPAddress);
    else if (n.rfc822Name !== undefined) out.emails.push(n.rfc822Name);
    else if (n.directoryName !== undefined) out.directoryNames.push(Buffer.from(AsnConvert.serialize(n.directoryName)));
    else if (n.otherName !== undefined) out.other.push('otherName');
    else if (n.registeredID !== undefined) out.other.push('registeredID');
    else if (n.x400Address !== undefined) out.other.push('x400Address');
    else out.other.push('ediPartyName');
  }
  return out;
}
