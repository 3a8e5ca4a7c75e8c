package azure

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/fixfleet/fixfleet/internal/secret"
)

// Key Vault secret tags the key source reads.
const (
	// TagKeyID marks a secret whose value is a BitLocker recovery password
	// (48 digits): its value is the recovery-key protector ID (the GUID the
	// recovery screen shows).
	TagKeyID = "fixfleet-key-id"
	// Azure Disk Encryption's own tags on the secret of a volume's key.
	TagADEKeyFile = "DiskEncryptionKeyFileName" // "<protector GUID>.BEK"
	TagADEMachine = "MachineName"
	TagADEVolume  = "VolumeLetter"
)

var recoveryPasswordRE = regexp.MustCompile(`^\d{6}(-\d{6}){7}$`)

// Unusable is a Key Vault secret the key source found but cannot use, and
// why; it names the secret, never its value.
type Unusable struct {
	Vault, Secret, KeyID, Machine, Volume, Reason string
}

// KeyVaultKeys is a BitLocker recovery-key source over Azure Key Vault
// secrets, beside the CSV one (remediate/keys): Key looks a recovery
// password up by its protector ID. Values are held as secret.Secret and
// never appear in an error, a log or Unusable.
//
// Azure Disk Encryption keeps each volume's key as a secret tagged with
// the VM (MachineName), the volume (VolumeLetter) and the key file name
// (DiskEncryptionKeyFileName, "<GUID>.BEK"); its value is a BitLocker key
// file, not a recovery password, and the guest unlock script takes
// recovery passwords only: such secrets are listed in Unusable with the
// reason. Recovery passwords escrowed as secrets tagged fixfleet-key-id
// (see docs/providers/azure.md) are what Key returns.
type KeyVaultKeys struct {
	keys     map[string]secret.Secret // normalized protector ID -> recovery password
	unusable []Unusable
}

// LoadKeyVaultKeys reads the BitLocker secrets of the vaults (URLs such as
// https://myvault.vault.azure.net/) with cred: a list of each vault's
// secrets, and one read per secret tagged with a key ID. opts may be nil.
// Errors name the vault and secret.
func LoadKeyVaultKeys(ctx context.Context, vaults []string, cred azcore.TokenCredential, opts *azsecrets.ClientOptions) (*KeyVaultKeys, error) {
	k := &KeyVaultKeys{keys: map[string]secret.Secret{}}
	for _, v := range vaults {
		c, err := azsecrets.NewClient(v, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("key vault %s: %w", v, err)
		}
		pager := c.NewListSecretPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("key vault %s: listing secrets: %w", v, classify(err, "ListSecrets", v))
			}
			for _, p := range page.Value {
				if p.ID == nil || (p.Attributes != nil && p.Attributes.Enabled != nil && !*p.Attributes.Enabled) {
					continue
				}
				if err := k.add(ctx, c, v, p); err != nil {
					return nil, err
				}
			}
		}
	}
	return k, nil
}

func (k *KeyVaultKeys) add(ctx context.Context, c *azsecrets.Client, vault string, p *azsecrets.SecretProperties) error {
	name := p.ID.Name()
	u := Unusable{Vault: vault, Secret: name, Machine: str(p.Tags[TagADEMachine]), Volume: str(p.Tags[TagADEVolume])}
	if id := str(p.Tags[TagKeyID]); id != "" {
		resp, err := c.GetSecret(ctx, name, "", nil)
		if err != nil {
			return fmt.Errorf("key vault %s: reading secret %s: %w", vault, name, classify(err, "GetSecret", name))
		}
		u.KeyID = normalizeKeyID(id)
		if !recoveryPasswordRE.MatchString(strings.TrimSpace(str(resp.Value))) {
			u.Reason = "its value is not a 48-digit BitLocker recovery password"
			k.unusable = append(k.unusable, u)
			return nil
		}
		k.keys[u.KeyID] = secret.New(strings.TrimSpace(str(resp.Value)))
		return nil
	}
	if f := str(p.Tags[TagADEKeyFile]); f != "" {
		u.KeyID = normalizeKeyID(strings.TrimSuffix(f, ".BEK"))
		u.Reason = "an Azure Disk Encryption key file (BEK), not a recovery password; the guest unlock takes recovery passwords only"
		k.unusable = append(k.unusable, u)
	}
	return nil
}

// normalizeKeyID is a protector ID in upper case without braces.
func normalizeKeyID(id string) string {
	return strings.ToUpper(strings.Trim(strings.TrimSpace(id), "{}"))
}

// Key returns the recovery password of protector keyID (any case, with or
// without braces).
func (k *KeyVaultKeys) Key(keyID string) (secret.Secret, bool) {
	s, ok := k.keys[normalizeKeyID(keyID)]
	return s, ok
}

// Len is the number of recovery passwords held.
func (k *KeyVaultKeys) Len() int { return len(k.keys) }

// Unusable lists the BitLocker secrets found but not usable, by vault and
// secret name.
func (k *KeyVaultKeys) Unusable() []Unusable {
	out := append([]Unusable(nil), k.unusable...)
	sort.Slice(out, func(i, j int) bool { return out[i].Vault+out[i].Secret < out[j].Vault+out[j].Secret })
	return out
}
