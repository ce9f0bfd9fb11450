module.exports = {
  displayName: 'repository',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/repository',
};
