"""Encryption at rest with the installation's Fernet key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts small secrets (TOTP seeds, later env values) for the database."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())
        self._mac_key = hashlib.sha256(b"gakwaya-mac:" + key.encode()).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("secret cannot be decrypted with this installation's key") from None

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 keyed by the installation secret (audit chain, recovery codes)."""
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()


def load_or_create_key(configured: str, data_dir: Path) -> str:
    """The configured key, or the one in ``data_dir/secret.key``, created on first use."""
    if configured:
        try:
            if len(base64.urlsafe_b64decode(configured.encode())) != 32:
                raise ValueError
        except ValueError:
            from gakwaya.settings import SettingsError

            raise SettingsError(
                "secret_key: must be 32 bytes in urlsafe base64 (make one with: gakwaya secret-key)"
            ) from None
        return configured
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
