;; invalid_bytes: bytes that are not WebAssembly, written down as a binary module.
;;
;; A correct header, then a type section of 5 bytes that claims 2^32 - 1 function types and
;; holds none: a host that trusted the count would try to make room for four billion types.
;; The text format's `(module binary ...)` writes these bytes as they are, unchecked, so the
;; file parses as text and the host's validator sees the bytes either way.
;;
;; Hostile case: invalid bytes. Creating it must fail with ModuleError::InvalidBytes.
(module binary
  "\00asm" "\01\00\00\00"        ;; the magic and version 1
  "\01" "\05"                    ;; section 1 (types), 5 bytes long,
  "\ff\ff\ff\ff\0f"              ;; holding only a count of 2^32 - 1 (unsigned LEB128)
)
