from __future__ import annotations

import base64

from django import forms
from django.core.files.uploadedfile import UploadedFile

from studio.engines import ocr
from studio.models import Template

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class UploadForm(forms.Form):
    image = forms.FileField(help_text="PNG, JPEG, WebP or GIF, up to 10 MB.")

    def image_base64(self) -> str:
        upload = self.cleaned_data["image"]
        return base64.b64encode(upload.read()).decode()

    def clean_image(self) -> UploadedFile[bytes]:
        upload: UploadedFile[bytes] = self.cleaned_data["image"]
        if (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The image is over 10 MB.")
        return upload


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
