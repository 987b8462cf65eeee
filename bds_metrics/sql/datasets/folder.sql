-- folder (SPEC §4): the tenant's configuration folders; FOLDERID is the parent.
-- Ordered by ID, then every column (text in code-point order, nulls last): of the rows
-- sharing an ID the extract keeps the first and counts the others as duplicate_key.
-- params: tenant_dbid
SELECT f.id::bigint AS folder_id,
       f.name::text AS name,
       f.folderid::bigint AS parent_id
FROM gidb_gc_folder f
WHERE ($1::int IS NULL OR f.tenantid = $1)
ORDER BY 1, f.name::text COLLATE "C", 3
