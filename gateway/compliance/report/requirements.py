"""The requirement catalogue G1–G21 of the MHLW guideline on remote dental technical work (医政歯発0510第1号,
2022-05-10), in our own words in Japanese and English, with what makes each report row "needs attention"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")

GUIDELINE = {
    "ja": "「歯科技工におけるリモートワークの基本的な考え方」（医政歯発0510第1号、令和4年5月10日）",
    "en": "MHLW notice 医政歯発0510第1号 (2022-05-10), basic approach to remote dental technical work",
}


@dataclass(frozen=True)
class Requirement:
    """One row of the catalogue: its G-id, the guideline section, its title, and what `attention` means on it."""

    id: str
    section: str  # "" where the catalogue names no section
    title_ja: str
    title_en: str
    attention_ja: str = ""  # empty: the row is either met or not met
    attention_en: str = ""

    def title(self, lang: Lang) -> str:
        return self.title_ja if lang == "ja" else self.title_en

    def attention(self, lang: Lang) -> str:
        return self.attention_ja if lang == "ja" else self.attention_en


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "G1", "2.(1)①",
        "リモートワークを行う者は当該歯科技工所に勤務する歯科技工士であり、作業場所は国内であること",
        "Remote workers are licensed dental technicians working for the lab, at a place in Japan",
    ),
    Requirement(
        "G2", "2.(1)①, 2.(2)②",
        "リモートワークはCADによる設計に限り、切削加工は歯科技工所内の機器で行うこと",
        "Remote work is CAD design only; milling is done by machines inside the lab",
    ),
    Requirement(
        "G3", "2.(1)②",
        "開設者はリモートワークを行う者（氏名・リモートワークの有無・電話番号・主な作業場所）を都道府県に届け出ること",
        "The founder notifies the prefecture of each remote worker (name, remote work, phone, main place of work)",
    ),
    Requirement(
        "G4", "2.(2)①",
        "患者の個人情報は医療情報システムの安全管理に関するガイドラインに沿って扱うこと",
        "Patients' personal information is handled as the medical information security guideline requires",
    ),
    Requirement(
        "G5", "2.(3)②i",
        "歯科技工所外ではのぞき見防止フィルター等を用い、管理者がそれを確認すること",
        "Outside the lab a privacy filter (and screen lock) is used, and the manager confirms it",
        "のぞき見防止・画面ロックの確認が30日以内に期限切れとなる",
        "a privacy-filter or screen-lock attestation runs out within 30 days",
    ),
    Requirement(
        "G6", "2.(3)②ii",
        "管理者が本人確認を行い、多要素認証で利用者を認証すること",
        "The manager verifies each person's identity; every login uses multi-factor authentication",
        "本人確認を待っている歯科技工士がいる（端末登録しかできない）",
        "an active technician still awaits identity verification (and can only enrol a device)",
    ),
    Requirement(
        "G7", "2.(3)②ii",
        "公衆無線LANを使わず、OS・ソフトウェアを最新に保ち、セキュリティ対策ソフトを導入すること",
        "No public Wi-Fi; OS and software kept up to date; security software installed and current",
    ),
    Requirement(
        "G8", "2.(3)②ii",
        "貸与端末・私物端末の利用規程を守り、私物端末は管理者が管理できる場合に限り、端末ごとにソフトウェアを台帳管理すること",
        "Lent and personal devices follow the rules; a personal device only if the manager can administer it; "
        "a software ledger per device",
        "私物端末の管理に関する確認が30日以内に期限切れとなる",
        "a personal device's administration attestation runs out within 30 days",
    ),
    Requirement(
        "G9", "2.(3)②ii",
        "不要な無線機能（Bluetooth、アドホック接続等）を無効にすること",
        "Unneeded wireless functions (Bluetooth, ad-hoc Wi-Fi) are switched off",
    ),
    Requirement(
        "G10", "2.(3)②ii",
        "個人ごとの強固なパスワードを使い、使い回さず、漏えいのおそれがあれば変更すること",
        "Strong individual passwords, never reused, changed when they may have been exposed",
        "強制変更を指示されたパスワードがまだ変更されていない",
        "an account told to change its password (after a reset) has not done so yet",
    ),
    Requirement(
        "G11", "2.(3)②iii",
        "設計データは安全なネットワークを通じて歯科技工所の加工機にのみ送ること",
        "Design data goes over a secure network, to the lab's milling machines only",
    ),
    Requirement(
        "G12", "2.(3)②iii",
        "共有の保存先について、閲覧・編集できる者を定めること",
        "For shared storage, who may view and change each item is defined",
        "無効化されたアカウントまたは失効した加工機が有効な権限をまだ持っている",
        "a disabled account or revoked station still holds an unexpired grant",
    ),
    Requirement(
        "G13", "2.(3)②iii",
        "汎用のファイル送信サービスを使わないこと",
        "No general-purpose file sending services are used",
    ),
    Requirement(
        "G14", "2.(3)②iv",
        "情報を利用する者と保存場所を定めること",
        "Who uses the information and where it is stored is defined",
        "オブジェクトストレージにサーバー側暗号化が設定されていない（設計データ自体は暗号化済み）",
        "the object store applies no server-side encryption (the designs themselves stay end-to-end encrypted)",
    ),
    Requirement(
        "G15", "2.(3)②iv",
        "外部記録媒体は必要な場合に限り、端末内のデータは暗号化すること",
        "Removable media only where needed; data on devices is encrypted",
        "外部記録媒体に関する確認が30日以内に期限切れとなる",
        "a removable-media attestation runs out within 30 days",
    ),
    Requirement(
        "G16", "2.(3)②v",
        "情報セキュリティの規程を文書で定め、従事者に周知すること",
        "Written security rules exist and every remote worker has acknowledged the version in force",
    ),
    Requirement(
        "G17", "2.(3)②v",
        "事故発生時の対応計画（連絡先・電話番号を含む）を定めること",
        "An incident response plan with contacts and phone numbers is in force",
    ),
    Requirement(
        "G18", "2.(3)②v",
        "端末の紛失・マルウェア感染・不審な事象は直ちに報告すること",
        "Lost devices, malware and anything suspicious are reported at once",
        "封じ込めが済んでいないインシデント、または送信に失敗した通知がある",
        "an incident is not yet contained, or a notification to the plan's contacts failed",
    ),
    Requirement(
        "G19", "2.(3)②v",
        "アクセス・認証・操作の記録を保存すること",
        "Access, authentication and operation logs are kept",
        "監査チェックポイントの外部公開が滞っている、または公開先を読めない",
        "signed checkpoints are not being published, or the publication cannot be read back",
    ),
    Requirement(
        "G20", "3.(1)",
        "症例ごとに、リモートで行った工程と場所を含む歯科技工録を作成すること",
        "A 歯科技工録 per case, including the processes done remotely and where",
        "ポリシーの期限を過ぎても下書きのままの歯科技工録がある",
        "a case's record is still a draft longer than the policy's completion period",
    ),
    Requirement(
        "G21", "3.(2)",
        "管理者と歯科技工士が研修を受け、その日付と受講者を記録すること",
        "The manager and the technicians are trained; dates and attendees are recorded",
        "研修の有効期限が30日以内に切れる",
        "someone's training runs out within 30 days",
    ),
)  # fmt: skip

BY_ID: dict[str, Requirement] = {requirement.id: requirement for requirement in REQUIREMENTS}
