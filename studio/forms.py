from __future__ import annotations

import base64
import uuid
from typing import Any

from django import forms
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile

from studio.engines import ocr, providers
from studio.models import Template

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# A picked file is kept this long after a refused run, so that a retry needs no second pick.
KEEP_UPLOAD_S = 15 * 60
# Shapes every image model makes (as an aspect ratio, or the size of that shape).
SHAPES = [("1:1", "Square"), ("2:3", "Portrait (2:3)"), ("3:2", "Landscape (3:2)")]


class UploadForm(forms.Form):
    """An image from the file input, or the one kept from the user's previous, refused run."""

    image = forms.FileField(required=False, help_text="PNG, JPEG, WebP or GIF, up to 10 MB.")
    kept = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user_id = user_id
        self.raw: bytes | None = None
        self.filename = ""

    def _cache_key(self, token: str) -> str:
        return f"studio-upload:{self.user_id}:{token}"

    def clean_image(self) -> UploadedFile[bytes] | None:
        upload: UploadedFile[bytes] | None = self.cleaned_data.get("image")
        if upload is not None and (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The image is over 10 MB.")
        return upload

    def clean(self) -> dict[str, Any]:
        super().clean()
        upload = self.cleaned_data.get("image")
        token = self.cleaned_data.get("kept") or ""
        if upload is not None:
            self.raw, self.filename = upload.read(), upload.name or "image"
        elif token and (kept := cache.get(self._cache_key(token))) is not None:
            self.raw, self.filename = kept
        elif "image" not in self.errors:
            self.add_error("image", "Choose an image.")
        return self.cleaned_data

    def image_base64(self) -> str:
        assert self.raw is not None  # is_valid() made sure
        return base64.b64encode(self.raw).decode()

    def keep(self) -> str | None:
        """Keep the picked file for a retry; the token goes in the re-rendered form."""
        if self.raw is None:
            return None
        token = uuid.uuid4().hex
        cache.set(self._cache_key(token), (self.raw, self.filename), KEEP_UPLOAD_S)
        return token


class GenerateForm(UploadForm):
    template = forms.ModelChoiceField(
        queryset=Template.objects.enabled(), widget=forms.RadioSelect, empty_label=None
    )


class OcrForm(UploadForm):
    language = forms.ChoiceField(choices=lambda: ocr.languages().items(), initial="auto")
    output_format = forms.ChoiceField(
        choices=[("text", "Plain text"), ("json", "JSON with boxes")],
        initial="text",
        label="Output",
    )


class PromptForm(forms.Form):
    prompt = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Describe the picture, e.g. “a cute cat in a teacup, watercolour”.",
    )
    model = forms.ChoiceField(required=False)
    aspect_ratio = forms.ChoiceField(choices=SHAPES, label="Shape")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.models = providers.offered()
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = [(model.name, model.label) for model in self.models]
