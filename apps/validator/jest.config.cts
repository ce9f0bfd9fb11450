module.exports = {
  displayName: 'validator',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/validator',
};
