import Foundation

/// The inventory's tables. Key columns are NOT NULL with '' for "none", so that UNIQUE
/// constraints hold in both databases.
enum Schema {
    /// The migrations in order, for a dialect (its id column type replaces `{ID}`).
    static func migrations(_ dialect: SQLDialect) -> [(name: String, sql: String)] {
        [("v1", v1.replacingOccurrences(of: "{ID}", with: dialect.idColumn)), ("v2", v2), ("v3", v3), ("v4", v4), ("v5", v5), ("v6", v6), ("v7", v7), ("v8", v8), ("v9", v9), ("v10", v10), ("v11", v11)]
    }

    /// The whole-fleet `audit vulns` reads each affected package's image rows with their
    /// buildpack and layer: with those columns in the index the rows are read from it alone
    /// (SQLite, 381,911 rows of 100,000 images: 2.8 s of table lookups → 0.11 s). It serves every
    /// lookup the package_id index served, which goes.
    static let v2 = """
            DROP INDEX IF EXISTS image_package_package;
            CREATE INDEX IF NOT EXISTS image_package_cover ON image_package (package_id, image_id, buildpack, layer);
            """

    /// Two covering indexes. Images by run image with their digest, read from the index alone:
    /// `package` of a run image package and `run-image` read every image on the run images they
    /// find (21,785 for a common Debian package on the bench fleet), each a table lookup for the
    /// digest before. A package's images by buildpack layer: `vulns` groups them so (PostgreSQL
    /// sorted 146,534 rows per 500 packages for that: 143 ms → 87 ms), and SQLite's rows of one
    /// layer come together. Building them reads the tables once (bench fleet, 9.9 million package
    /// rows: 39 s on SQLite, 16 s on PostgreSQL).
    static let v3 = """
            DROP INDEX IF EXISTS image_run_image;
            CREATE INDEX IF NOT EXISTS image_run_image_cover ON image (run_image_id, id, digest);
            DROP INDEX IF EXISTS image_package_cover;
            CREATE INDEX IF NOT EXISTS image_package_layer ON image_package (package_id, buildpack, layer, image_id);
            """

    /// Two covering indexes for `plan`'s patch candidates: a layer's rebasable builds with their
    /// image and diffID, and a buildpack's versions by image, each read from the index alone.
    /// They replace the (buildpack, layer) and (module) indexes, whose lookups they serve. On
    /// PostgreSQL (bench fleet, a layer of 2,405 builds) the candidate statement visited
    /// ~4,000 table pages for these columns.
    static let v4 = """
            DROP INDEX IF EXISTS image_layer_name;
            CREATE INDEX IF NOT EXISTS image_layer_build ON image_layer (buildpack, layer, rebasable, image_id, diffid);
            DROP INDEX IF EXISTS image_module_module;
            CREATE INDEX IF NOT EXISTS image_module_cover ON image_module (module, kind, image_id, version);
            """

    /// Chain of custody, per image and public key (its sha256 fingerprint): whether a signature
    /// by the key verifies, whether a SLSA provenance attestation does and the builder it names,
    /// and the buildpack sources the builder's own verified provenance lists. Rewritten on every
    /// `audit index --key` run (signatures can be added after an image was indexed); an image
    /// without a row for a key was never checked with it, which queries say rather than guess.
    static let v5 = """
            CREATE TABLE image_trust (
              image_id BIGINT NOT NULL,
              key TEXT NOT NULL,
              signed INTEGER NOT NULL,
              provenance INTEGER NOT NULL,
              builder TEXT NOT NULL DEFAULT '',
              builder_digest TEXT NOT NULL DEFAULT '',
              detail TEXT NOT NULL DEFAULT '',
              checked BIGINT NOT NULL,
              PRIMARY KEY (image_id, key)
            );
            CREATE TABLE image_buildpack_source (
              image_id BIGINT NOT NULL,
              key TEXT NOT NULL,
              buildpack TEXT NOT NULL,
              source TEXT NOT NULL,
              source_digest TEXT NOT NULL,
              PRIMARY KEY (image_id, key, buildpack, source_digest)
            );
            CREATE INDEX image_buildpack_source_digest ON image_buildpack_source (source_digest, key, image_id);
            """

    /// A run image version is its whole stack of layers (their ChainID), not its top layer: a
    /// stack rebuilt with a package added in a lower layer kept a byte-identical top layer, so
    /// the new version was taken for the old one and its packages never read (issue 39). The
    /// key column is renamed, so the UNIQUE constraint follows it in both databases; rows
    /// written before keep their top layer as key, which is the ChainID of one-layer run images
    /// and matches nothing new otherwise, so re-indexing records such versions afresh.
    static let v6 = """
            ALTER TABLE run_image RENAME COLUMN top_layer TO layers;
            ALTER TABLE run_image ADD COLUMN top_layer TEXT NOT NULL DEFAULT '';
            UPDATE run_image SET top_layer = layers;
            """

    /// Why an image's packages are not all known ('' when they are): no SBOM layer, an SBOM
    /// document that cannot be read. Queries report such images as `unknown`, never as clean;
    /// the partial index keeps that lookup to the few it concerns.
    /// Why a package version may be affected by an advisory when that cannot be told ('' when
    /// the answer is sure): a version its ecosystem's grammar does not accept, an ecosystem whose
    /// order Cairn does not know. Answers list such rows as `unknown`, never as clean.
    static let v8 = """
            ALTER TABLE vulnerable ADD COLUMN unknown TEXT NOT NULL DEFAULT '';
            """

    /// Exploit data for `vulns --sort risk`, each table a whole published snapshot (replaced on
    /// import): CISA's KEV catalog and FIRST's EPSS scores, by CVE.
    static let v9 = """
            CREATE TABLE kev (cve TEXT PRIMARY KEY, date_added TEXT NOT NULL, ransomware TEXT NOT NULL);
            CREATE TABLE epss (cve TEXT PRIMARY KEY, score DOUBLE PRECISION NOT NULL, percentile DOUBLE PRECISION NOT NULL);
            """

    /// History: which image each name pointed to from which index run until which (NULL: still),
    /// for `vulns --as-of` and `exposure`; advisories' publication time. Names indexed before
    /// start their history at the run they were last seen in.
    static let v10 = """
            ALTER TABLE advisory ADD COLUMN published TEXT NOT NULL DEFAULT '';
            CREATE TABLE name_history (
              location TEXT NOT NULL,
              name TEXT NOT NULL,
              image_id BIGINT NOT NULL,
              from_run BIGINT NOT NULL,
              until_run BIGINT
            );
            CREATE INDEX name_history_name ON name_history (location, name, from_run);
            CREATE INDEX name_history_open ON name_history (location, name) WHERE until_run IS NULL;
            INSERT INTO name_history (location, name, image_id, from_run) SELECT location, name, image_id, seen FROM image_name;
            """

    /// Packages an image's build used but does not contain (its build-time SBOM, kept beside the
    /// image): never findings, and `not_affected` in the image's VEX.
    static let v11 = """
            CREATE TABLE image_build_package (
              image_id BIGINT NOT NULL,
              package_id BIGINT NOT NULL,
              buildpack TEXT NOT NULL,
              PRIMARY KEY (image_id, package_id, buildpack)
            );
            """

    static let v7 = """
            ALTER TABLE image ADD COLUMN unknown TEXT NOT NULL DEFAULT '';
            CREATE INDEX image_unknown ON image (id) WHERE unknown <> '';
            """

    static let v1 = """
            CREATE TABLE index_run (id {ID}, started TEXT NOT NULL, source TEXT NOT NULL);
            CREATE TABLE run_image (
              id {ID},
              identity TEXT NOT NULL,
              name TEXT NOT NULL,
              top_layer TEXT NOT NULL,
              reference TEXT NOT NULL DEFAULT '',
              released TEXT NOT NULL DEFAULT '',
              created TEXT NOT NULL DEFAULT '',
              distro TEXT NOT NULL DEFAULT '',
              distro_version TEXT NOT NULL DEFAULT '',
              packages_known INTEGER NOT NULL DEFAULT 0,
              first_seen BIGINT NOT NULL,
              last_named BIGINT NOT NULL DEFAULT 0,
              UNIQUE (name, top_layer)
            );
            CREATE INDEX run_image_identity ON run_image (identity);
            CREATE TABLE package (
              id {ID},
              ecosystem TEXT NOT NULL,
              name TEXT NOT NULL,
              version TEXT NOT NULL,
              purl TEXT NOT NULL DEFAULT '',
              source_name TEXT NOT NULL DEFAULT '',
              source_version TEXT NOT NULL DEFAULT '',
              matched INTEGER NOT NULL DEFAULT 0,
              UNIQUE (ecosystem, name, version, purl, source_name, source_version)
            );
            CREATE INDEX package_name ON package (name);
            CREATE INDEX package_source ON package (source_name);
            CREATE INDEX package_matched ON package (matched);
            CREATE TABLE run_image_package (
              run_image_id BIGINT NOT NULL,
              package_id BIGINT NOT NULL,
              PRIMARY KEY (run_image_id, package_id)
            );
            CREATE INDEX run_image_package_package ON run_image_package (package_id);
            CREATE TABLE image (
              id {ID},
              digest TEXT NOT NULL UNIQUE,
              created TEXT NOT NULL DEFAULT '',
              os TEXT NOT NULL DEFAULT '',
              architecture TEXT NOT NULL DEFAULT '',
              run_image_id BIGINT,
              launcher_version TEXT NOT NULL DEFAULT '',
              launcher_diffid TEXT NOT NULL DEFAULT '',
              first_seen BIGINT NOT NULL
            );
            CREATE INDEX image_run_image ON image (run_image_id);
            CREATE TABLE image_name (
              location TEXT NOT NULL,
              name TEXT NOT NULL,
              image_id BIGINT NOT NULL,
              seen BIGINT NOT NULL,
              PRIMARY KEY (location, name)
            );
            CREATE INDEX image_name_image ON image_name (image_id, location, name);
            CREATE TABLE image_module (
              image_id BIGINT NOT NULL,
              kind TEXT NOT NULL,
              module TEXT NOT NULL,
              version TEXT NOT NULL,
              PRIMARY KEY (image_id, kind, module)
            );
            CREATE INDEX image_module_module ON image_module (module);
            CREATE TABLE image_layer (
              image_id BIGINT NOT NULL,
              buildpack TEXT NOT NULL,
              layer TEXT NOT NULL,
              diffid TEXT NOT NULL,
              metadata TEXT NOT NULL DEFAULT '',
              rebasable INTEGER NOT NULL DEFAULT 0,
              PRIMARY KEY (image_id, buildpack, layer)
            );
            CREATE INDEX image_layer_name ON image_layer (buildpack, layer);
            CREATE TABLE image_package (
              image_id BIGINT NOT NULL,
              package_id BIGINT NOT NULL,
              buildpack TEXT NOT NULL,
              layer TEXT NOT NULL,
              PRIMARY KEY (image_id, package_id, buildpack, layer)
            );
            CREATE INDEX image_package_package ON image_package (package_id);
            CREATE TABLE advisory (
              id TEXT PRIMARY KEY,
              modified TEXT NOT NULL DEFAULT '',
              summary TEXT NOT NULL DEFAULT '',
              severity TEXT NOT NULL DEFAULT '',
              withdrawn TEXT NOT NULL DEFAULT ''
            );
            CREATE TABLE advisory_alias (
              alias TEXT NOT NULL,
              advisory_id TEXT NOT NULL,
              PRIMARY KEY (alias, advisory_id)
            );
            CREATE TABLE advisory_affected (
              advisory_id TEXT NOT NULL,
              ecosystem TEXT NOT NULL,
              release TEXT NOT NULL,
              name TEXT NOT NULL,
              ranges TEXT NOT NULL
            );
            CREATE INDEX advisory_affected_advisory ON advisory_affected (advisory_id);
            CREATE INDEX advisory_affected_name ON advisory_affected (ecosystem, name);
            CREATE TABLE vulnerable (
              package_id BIGINT NOT NULL,
              advisory_id TEXT NOT NULL,
              release TEXT NOT NULL,
              fixed TEXT NOT NULL,
              PRIMARY KEY (package_id, advisory_id, release)
            );
            CREATE INDEX vulnerable_advisory ON vulnerable (advisory_id);
            """
}
