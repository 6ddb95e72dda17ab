-- Reserved for the tenant leases (another branch). This placeholder only
-- keeps the numbering unbroken on the i18n branch; the merge replaces it
-- with the leases' own 0011.
SELECT 1;
